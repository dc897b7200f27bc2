package query

import (
	"errors"
	"reflect"
	"testing"

	"github.com/pullnet/pullnet/resource"
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"kind:compute tag:gpu gpu.count>=2 \"stable diffusion\"",
		"tag:gpu|tag:tpu region=eu",
		"tag:gpu | tag:tpu |llama",
		`owner="ada lovelace" os!=windows`,
		`"say \"hi\" \\o/"`,
		`x="=y" a!<3 hello!`,
		"id:a:b derived:bafkreiY KIND:Model",
		"naïve café \u212Aelvin İstanbul Ⱥ",
		"price>-inf vram<=1e3 n=0x1p3 m=1_000",
		"",
		"|",
		"a ||b",
		`"unterminated`,
		"kind:",
		"foo:bar",
		">=2",
		"a==b",
		`"a\x"`,
		"\xff",
	} {
		f.Add(s)
	}
	r := &resource.Resource{
		ID:          "bafkreigpubox",
		Kind:        "compute",
		Name:        "Stable Diffusion XL",
		Description: "RTX 4090, café \u212Aelvin İ \xff",
		Tags:        []string{"cuda", "gpu"},
		Attrs:       map[string]string{"gpu.count": "2", "Region": "EU", "v": "1.2.3"},
		DerivedFrom: []string{"bafkreibase"},
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := Parse(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error %v is not a *SyntaxError", s, err)
			}
			if se.Pos < 1 || se.Pos > len(s)+1 {
				t.Fatalf("Parse(%q) error position %d out of range", s, se.Pos)
			}
			return
		}
		canon := q.String()
		q2, err := Parse(canon)
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which does not parse: %v", s, canon, err)
		}
		if q2.String() != canon {
			t.Fatalf("Parse(%q) = %q, which parses to %q", s, canon, q2.String())
		}
		if !reflect.DeepEqual(q, q2) {
			t.Fatalf("Parse(%q) and Parse(%q) differ", s, canon)
		}
		if m := q.Match(r); m != q2.Match(r) {
			t.Fatalf("Parse(%q) and its canonical form match differently", s)
		}
		if sc := q.Score(r); sc < 0 || sc > 1 || (sc > 0) != q.Match(r) {
			t.Fatalf("Parse(%q).Score = %v with Match %v", s, sc, q.Match(r))
		}
		terms, err := q.LookupTerms()
		if err != nil && !errors.Is(err, ErrNotIndexable) || err == nil && len(terms) == 0 {
			t.Fatalf("Parse(%q).LookupTerms() = %q, %v", s, terms, err)
		}
	})
}
