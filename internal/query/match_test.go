package query

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/pullnet/pullnet/resource"
)

func TestMatch(t *testing.T) {
	gpuBox := &resource.Resource{
		ID:          "bafkreigpubox",
		Kind:        "compute",
		Name:        "Stable Diffusion XL box",
		Description: "An RTX 4090 for image generation. Café-friendly.",
		Tags:        []string{"cuda", "gpu"},
		Attrs: map[string]string{
			"gpu.count": "2",
			"vram":      "24",
			"region":    "EU",
			"os":        "linux",
			"Version":   "1.10.2",
			"price":     "0.50",
			"owner":     "ada lovelace",
		},
		DerivedFrom: []string{"bafkreibase"},
	}
	tests := []struct {
		q    string
		r    *resource.Resource
		want bool
	}{
		{"kind:compute", gpuBox, true},
		{"kind:COMPUTE", gpuBox, true},
		{"kind:dataset", gpuBox, false},
		{"tag:gpu", gpuBox, true},
		{"tag:GPU", gpuBox, true},
		{"tag:tpu", gpuBox, false},
		{"id:bafkreigpubox", gpuBox, true},
		{"id:bafkreiGPUBOX", gpuBox, false}, // IDs are exact
		{"derived:bafkreibase", gpuBox, true},
		{"derived:bafkreiother", gpuBox, false},

		// Numbers compare as numbers when both sides are numbers.
		{"gpu.count>=2", gpuBox, true},
		{"gpu.count>2", gpuBox, false},
		{"gpu.count=2.0", gpuBox, true},
		{"gpu.count=02", gpuBox, true},
		{"vram>8", gpuBox, true}, // though as strings "24" < "8"
		{"vram<100", gpuBox, true},
		{"price=0.5", gpuBox, true},
		{"price<1e0", gpuBox, true},
		{"price>-inf", gpuBox, true},
		// Otherwise as lowercased strings.
		{"region=eu", gpuBox, true},
		{"region=EU", gpuBox, true},
		{"region!=eu", gpuBox, false},
		{"region!=us", gpuBox, true},
		{"region<f", gpuBox, true},
		{"region>=eu", gpuBox, true},
		{"region>eu", gpuBox, false},
		{"version>1.9", gpuBox, false}, // "1.10.2" is not a number: "1.1" < "1.9"
		{"version=1.10.2", gpuBox, true},
		{"os=LINUX", gpuBox, true},
		{`owner="Ada Lovelace"`, gpuBox, true},
		{`owner=ada`, gpuBox, false},
		// Keys are case-insensitive both ways.
		{"GPU.COUNT=2", gpuBox, true},
		{"version=1.10.2", gpuBox, true},
		{"VERSION=1.10.2", gpuBox, true},
		// A missing attribute matches only !=.
		{"cpu.count!=4", gpuBox, true},
		{"cpu.count=4", gpuBox, false},
		{"cpu.count<4", gpuBox, false},
		{"cpu.count>=0", gpuBox, false},

		// Free text: a case-insensitive substring of name or description.
		{"diffusion", gpuBox, true},
		{`"stable diffusion"`, gpuBox, true},
		{`"STABLE DIFFUSION xl"`, gpuBox, true},
		{`"diffusion stable"`, gpuBox, false},
		{"rtx", gpuBox, true},
		{"generat", gpuBox, true},
		{"CAFÉ", gpuBox, true},
		{`"box an"`, gpuBox, false}, // no match across name and description
		{"tpu", gpuBox, false},

		// AND of OR-groups.
		{"kind:compute tag:gpu gpu.count>=2 \"stable diffusion\"", gpuBox, true},
		{"kind:compute tag:tpu", gpuBox, false},
		{"tag:tpu|tag:gpu", gpuBox, true},
		{"tag:tpu|tag:npu", gpuBox, false},
		{"kind:dataset|tag:cuda region=eu", gpuBox, true},
		{"kind:dataset|tag:cuda region=us", gpuBox, false},
		{"tag:tpu|llama|gpu.count>1", gpuBox, true},

		// Kelvin sign and dotted capital I lowercase to ASCII letters.
		{"kelvin", &resource.Resource{Name: "\u212Aelvin scale"}, true},
		{"istanbul", &resource.Resource{Name: "İstanbul"}, true},
		{"naïve", &resource.Resource{Name: "NAÏVE Bayes"}, true},
		{"naive", &resource.Resource{Name: "NAÏVE Bayes"}, false},
	}
	for _, tt := range tests {
		q, err := Parse(tt.q)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.q, err)
			continue
		}
		if got := q.Match(tt.r); got != tt.want {
			t.Errorf("Parse(%q).Match(%q) = %v, want %v", tt.q, tt.r.Name, got, tt.want)
		}
	}
}

// TestMatchCaseVariantKeys covers a resource with two keys that differ only
// in case: any of them can satisfy a comparison, and != is the negation of =.
func TestMatchCaseVariantKeys(t *testing.T) {
	r := &resource.Resource{Attrs: map[string]string{"Region": "eu", "REGION": "us"}}
	for q, want := range map[string]bool{
		"region=eu":  true,
		"region=us":  true,
		"region=ap":  false,
		"region!=eu": false,
		"region!=ap": true,
	} {
		if got := mustParse(t, q).Match(r); got != want {
			t.Errorf("Parse(%q).Match = %v, want %v", q, got, want)
		}
	}
}

func TestMatchAllocs(t *testing.T) {
	q := mustParse(t, `kind:compute tag:gpu|tag:tpu gpu.count>=2 region!=us version<2 "stable diffusion"`)
	rs := []*resource.Resource{
		{Kind: "compute", Name: "Stable Diffusion", Tags: []string{"gpu"}, Attrs: map[string]string{"gpu.count": "4", "Version": "1.2.3"}},
		{Kind: "compute", Name: "Ünïcode Stäble Diffusion", Tags: []string{"tpu"}, Attrs: map[string]string{"GPU.Count": "many"}},
		{Kind: "compute", Name: "x", Tags: []string{"gpu"}, Attrs: map[string]string{"gpu.count": "2", "region": "eu"}},
	}
	allocs := testing.AllocsPerRun(100, func() {
		for _, r := range rs {
			q.Match(r)
		}
	})
	if allocs != 0 {
		t.Errorf("Match allocates %v times", allocs)
	}
}

func TestScore(t *testing.T) {
	mk := func(name, desc string, tags ...string) *resource.Resource {
		return &resource.Resource{Kind: "model", Name: name, Description: desc, Tags: tags}
	}
	// Each list is in strictly decreasing order of score.
	tests := []struct {
		q  string
		rs []*resource.Resource
	}{
		{`"stable diffusion"`, []*resource.Resource{
			mk("Stable Diffusion", ""),
			mk("Stable Diffusion XL", ""),
			mk("Unstable Diffusion", ""),
			mk("SDXL", "A stable diffusion model"),
			mk("SDXL", "Unstable diffusion model"),
		}},
		{"tag:gpu|tag:cuda|tag:rocm", []*resource.Resource{
			mk("a", "", "cuda", "gpu", "rocm"),
			mk("a", "", "cuda", "gpu"),
			mk("a", "", "gpu"),
		}},
		{`kind:model llama tag:gpu|tag:cuda`, []*resource.Resource{
			mk("Llama", "", "cuda", "gpu"),
			mk("Llama", "", "gpu"),
			mk("Llama 3", "", "gpu"),
			mk("Big model", "llama", "gpu"),
		}},
	}
	for _, tt := range tests {
		q := mustParse(t, tt.q)
		prev := math.Inf(1)
		for _, r := range tt.rs {
			s := q.Score(r)
			if s <= 0 || s > 1 || s >= prev {
				t.Errorf("Parse(%q).Score(%q %q %v) = %v, want in (0, 1] and below %v", tt.q, r.Name, r.Description, r.Tags, s, prev)
			}
			prev = s
		}
	}

	r := mk("Llama", "", "gpu")
	for q, want := range map[string]float64{
		"kind:model":     1,     // nothing to rank by
		"kind:dataset":   0,     // no match
		"llama":          1,     // exact name
		"tag:gpu":        1,     // the only tag asked for
		"tag:gpu|kind:x": 0.875, // 0.75·1 + 0.25·(1+0)/2
		"kind:model|ab":  0.875, // a matching filter scores 1 in a group that ranks
		"tag:gpu|tag:x":  0.875, // 0.75·1 + 0.25·(1+0)/2
		`llama tag:gpu`:  1,
	} {
		if got := mustParse(t, q).Score(r); got != want {
			t.Errorf("Parse(%q).Score = %v, want %v", q, got, want)
		}
	}
}

// TestLowerHelpers checks the allocation-free case-insensitive helpers
// against strings.ToLower, which they promise to agree with.
func TestLowerHelpers(t *testing.T) {
	hay := []string{"", "abc", "ABC", "Stable Diffusion", "\u212Aelvin", "İstanbul", "ÀÉÎ õü", "a\xffb", "ⱥȺ", "ß ẞ", "x"}
	needles := []string{"a", "abc", "diffusion", "kelvin", "istanbul", "éî", "\ufffd", "ⱥⱥ", "ß", "z", "kelvin!"}
	for _, s := range hay {
		for _, n := range needles {
			checkLower(t, s, n)
		}
	}
}

func FuzzLower(f *testing.F) {
	f.Add("Stable Diffusion", "diffusion")
	f.Add("\u212Aelvin", "k")
	f.Add("a\xffb", "\ufffdb")
	f.Fuzz(func(t *testing.T, s, needle string) {
		checkLower(t, s, strings.ToLower(strings.ToValidUTF8(needle, "\ufffd")))
	})
}

func checkLower(t *testing.T, s, lower string) {
	t.Helper()
	ls := strings.ToLower(s)
	if got, want := compareLower(s, lower), strings.Compare(ls, lower); got != want {
		t.Errorf("compareLower(%q, %q) = %d, want %d", s, lower, got, want)
	}
	if got, want := equalLower(s, lower), ls == lower; got != want {
		t.Errorf("equalLower(%q, %q) = %v, want %v", s, lower, got, want)
	}
	if got, want := containsLower(s, lower), strings.Contains(ls, lower); got != want {
		t.Errorf("containsLower(%q, %q) = %v, want %v", s, lower, got, want)
	}
	if start, end := indexLower(s, lower, 0); start >= 0 && strings.ToLower(s[start:end]) != lower {
		t.Errorf("indexLower(%q, %q) = %d, %d: not the needle", s, lower, start, end)
	}
	if _, ok := lowerPrefix(s, lower); ok != strings.HasPrefix(ls, lower) {
		t.Errorf("lowerPrefix(%q, %q) = %v", s, lower, ok)
	}
}

func TestParseNumber(t *testing.T) {
	for _, s := range []string{
		"0", "2", "-2", "+2", "2.", ".5", "-.5e-3", "1e10", "1E+3", "1_000", "0x1p3", "0X1P-2", "0x10",
		"inf", "-Inf", "+INFINITY", "nan", "NaN", "1e400", "", "-", ".", "e1", "1e", "1e+", "1.2.3",
		"2024-01-01", "v1", "abc", "١٢", "1 ", " 1", "infinit", "0b101", "_1", "1__0",
	} {
		checkNumber(t, s)
	}
}

func FuzzNumber(f *testing.F) {
	for _, s := range []string{"1", "-.5e-3", "0x1p3", "1_000", "inf", "nan", "1.2.3"} {
		f.Add(s)
	}
	f.Fuzz(checkNumber)
}

func checkNumber(t *testing.T, s string) {
	want, err := strconv.ParseFloat(s, 64)
	wantOK := err == nil && !math.IsNaN(want)
	got, ok := parseNumber(s)
	if ok != wantOK || ok && got != want {
		t.Errorf("parseNumber(%q) = %v, %v; want %v, %v", s, got, ok, want, wantOK)
	}
}

func mustParse(t testing.TB, s string) *Query {
	t.Helper()
	q, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return q
}

// An order against a number is a quantity comparison: a value that is not a
// number never satisfies it, while = and != still compare it as text.
func TestMatchNumberAgainstText(t *testing.T) {
	r := &resource.Resource{Kind: "compute", Name: "x", Attrs: map[string]string{"gpu.count": "many"}}
	for q, want := range map[string]bool{
		"gpu.count>=2": false, "gpu.count<2": false, "gpu.count=2": false, "gpu.count!=2": true,
		"gpu.count>=a": true, "gpu.count=MANY": true,
	} {
		p, err := Parse(q)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Match(r); got != want {
			t.Errorf("%s on gpu.count=many: %v, want %v", q, got, want)
		}
	}
}
