package query

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in, want string // want is the canonical form
	}{
		{"kind:compute", "kind:compute"},
		{"  KIND:Compute  ", "kind:compute"},
		{"Tag:GPU", "tag:gpu"},
		{"id:bafkreiAbc", "id:bafkreiAbc"},
		{"derived:bafkreixyz", "derived:bafkreixyz"},
		{"gpu.count>=2", "gpu.count>=2"},
		{"GPU.Count>=2", "gpu.count>=2"},
		{"region=EU", "region=EU"},
		{"os!=windows", "os!=windows"},
		{"a<1 b<=2 c>3 d>=4 e=5 f!=6", "a<1 b<=2 c>3 d>=4 e=5 f!=6"},
		{`owner="ada lovelace"`, `owner="ada lovelace"`},
		{`owner="ada"`, `owner=ada`},
		{`url=http://x/?a=b`, `url=http://x/?a=b`},
		{`x="=y"`, `x="=y"`},
		{`"Stable Diffusion"`, `"stable diffusion"`},
		{`"gpu"`, `gpu`},
		{`"a:b"`, `"a:b"`},
		{`"x=1"`, `"x=1"`},
		{`"say \"hi\" \\o/"`, `"say \"hi\" \\o/"`},
		{`"back\\slash"`, `back\slash`},
		{`back\slash`, `back\slash`},
		{"GPU", "gpu"},
		{"hello!", "hello!"},
		{"a!<3", "a!<3"},
		{"tag:gpu|tag:tpu", "tag:gpu|tag:tpu"},
		{"tag:gpu | tag:tpu", "tag:gpu|tag:tpu"},
		{"tag:gpu |tag:tpu| tag:npu", "tag:gpu|tag:tpu|tag:npu"},
		{`"a b"|"c d"`, `"a b"|"c d"`},
		{"kind:compute tag:gpu gpu.count>=2 \"stable diffusion\"", "kind:compute tag:gpu gpu.count>=2 \"stable diffusion\""},
		{"kind:a\tkind:b\n", "kind:a kind:b"},
		{"id:a:b", "id:a:b"},
		{"tag:c++ tag:c#", "tag:c++ tag:c#"},
		{`kind:"x y"`, `kind:"x y"`},
		{"Ⱥ", "ⱥ"},
		{"naïve café", "naïve café"},
	}
	for _, tt := range tests {
		q, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if got := q.String(); got != tt.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
		q2, err := Parse(q.String())
		if err != nil {
			t.Errorf("Parse(%q) of the canonical form of %q: %v", q.String(), tt.in, err)
			continue
		}
		if !reflect.DeepEqual(q, q2) {
			t.Errorf("Parse(%q) differs from Parse of its canonical form %q", tt.in, q.String())
		}
	}
}

func TestParseStructure(t *testing.T) {
	q, err := Parse(`kind:compute tag:gpu|tag:tpu x>=2.5 "Stable Diffusion"`)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]term{
		{{field: fieldKind, value: "compute"}},
		{{field: fieldTag, value: "gpu"}, {field: fieldTag, value: "tpu"}},
		{{field: fieldAttr, op: opGe, key: "x", value: "2.5", fold: "2.5", num: 2.5, isNum: true}},
		{{field: fieldText, value: "stable diffusion"}},
	}
	if !reflect.DeepEqual(q.groups, want) {
		t.Errorf("groups = %+v\nwant %+v", q.groups, want)
	}
	// Free text goes last in evaluation order, the kind first.
	if q.eval[0][0].field != fieldKind || q.eval[3][0].field != fieldText {
		t.Errorf("eval order = %+v", q.eval)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in  string
		pos int
		msg string // a substring of the message
	}{
		{"", 1, "empty query"},
		{"   \t ", 1, "empty query"},
		{"|", 1, "missing term before |"},
		{"| kind:a", 1, "missing term before |"},
		{"kind:a |", 8, "missing term after |"},
		{"kind:a || kind:b", 9, "missing term before |"},
		{"kind:a | | kind:b", 10, "missing term before |"},
		{"kind:a | kind:b |", 17, "missing term after |"},
		{`tag:x "stable`, 7, "unterminated quote"},
		{`"abc\"`, 1, "unterminated quote"},
		{`"abc\`, 1, "unterminated quote"},
		{`owner="ada`, 7, "unterminated quote"},
		{`"a\nb"`, 3, "invalid escape"},
		{`""`, 1, "empty quoted text"},
		{`kind:""`, 6, "empty value after kind:"},
		{"kind:", 6, "missing value after kind:"},
		{"kind: compute", 6, "missing value after kind:"},
		{"tag:|tag:b", 5, "missing value after tag:"},
		{"a>=", 4, "missing value after >="},
		{"a= b", 3, "missing value after ="},
		{"a==b", 3, "unexpected ="},
		{"a=>b", 3, "unexpected >"},
		{"foo:bar", 1, "unknown field foo; use kind:, tag:, id:, derived: or key=value"},
		{"kind:a Foo:bar", 8, "unknown field Foo;"},
		{"http://example.com", 1, "unknown field http"},
		{":x", 1, "missing field name before :"},
		{"=x", 1, "operator = without a key"},
		{"kind:a >=2", 8, "operator >= without a key"},
		{"!=x", 1, "operator != without a key"},
		{`foo"bar"`, 4, `unexpected "`},
		{`a="b"c`, 6, "missing space after closing quote"},
		{`"a""b"`, 4, "missing space after closing quote"},
		{`x=a"b`, 4, `unexpected " inside a value`},
		{"héllo wörld fo:x", 13, "unknown field fo"},
		{"ü\xffx", 2, "not valid UTF-8"},
	}
	for _, tt := range tests {
		q, err := Parse(tt.in)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q) = %v, %v; want a *SyntaxError", tt.in, q, err)
			continue
		}
		if se.Pos != tt.pos || !strings.Contains(se.Msg, tt.msg) {
			t.Errorf("Parse(%q) error = %q at %d, want %q at %d", tt.in, se.Msg, se.Pos, tt.msg, tt.pos)
		}
	}
}

func TestSyntaxErrorString(t *testing.T) {
	_, err := Parse(`tag:x "stable`)
	if got, want := err.Error(), "position 7: unterminated quote"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestParseLimits(t *testing.T) {
	// MaxTerms terms parse; one more does not, and the error points at it.
	terms := make([]string, MaxTerms+1)
	for i := range terms {
		terms[i] = "tag:t"
	}
	if _, err := Parse(strings.Join(terms[:MaxTerms], " ")); err != nil {
		t.Errorf("%d terms: %v", MaxTerms, err)
	}
	_, err := Parse(strings.Join(terms, "|"))
	var se *SyntaxError
	if !errors.As(err, &se) || se.Pos != MaxTerms*6+1 || !strings.Contains(se.Msg, "more than 64 terms") {
		t.Errorf("%d terms: %v", MaxTerms+1, err)
	}

	long := "kind:" + strings.Repeat("x", MaxLen-len("kind:"))
	if _, err := Parse(long); err != nil {
		t.Errorf("%d bytes: %v", len(long), err)
	}
	_, err = Parse(long + "x")
	if !errors.As(err, &se) || se.Pos != MaxLen+1 || !strings.Contains(se.Msg, "longer than 4096 bytes") {
		t.Errorf("%d bytes: %v", len(long)+1, err)
	}
	// The limit counts bytes, but the position counts characters, and
	// points at the start of a character the limit cuts.
	_, err = Parse(strings.Repeat("é", MaxLen/2) + "x")
	if !errors.As(err, &se) || se.Pos != MaxLen/2+1 {
		t.Errorf("long non-ASCII query: %v", err)
	}
	// Here byte MaxLen is the second byte of the last é, character 2049.
	_, err = Parse("x" + strings.Repeat("é", MaxLen/2))
	if !errors.As(err, &se) || se.Pos != MaxLen/2+1 {
		t.Errorf("long non-ASCII query cut inside a character: %v", err)
	}

	// Ⱥ lowercases to ⱥ, one byte longer in UTF-8: a query within the limit
	// can outgrow it once normalized.
	grow := "tag:x " + strings.Repeat("Ⱥ", (MaxLen-6)/2)
	_, err = Parse(grow)
	if !errors.As(err, &se) || se.Pos != 7 || !strings.Contains(se.Msg, "once normalized") {
		t.Errorf("query that grows when lowercased: %v", err)
	}
}
