package resource

import (
	"slices"
	"testing"
)

func TestAttrTermNormalForm(t *testing.T) {
	for _, tt := range []struct{ k, v, want string }{
		{"Region", "EU", "attr:region=eu"},
		{"gpu.count", "2", "attr:gpu.count=2"},
		{"gpu.count", "2.0", "attr:gpu.count=2"},
		{"mem", "1e3", "attr:mem=1000"},
		{"v", "NaN", "attr:v=nan"},
	} {
		if got := AttrTerm(tt.k, tt.v); got != tt.want {
			t.Errorf("AttrTerm(%q, %q) = %q, want %q", tt.k, tt.v, got, tt.want)
		}
	}
}

func TestIndexTerms(t *testing.T) {
	r := Resource{ID: "bafyid", Kind: "compute", Name: "GPU box", Description: "for stable diffusion",
		Tags: []string{"gpu"}, Attrs: map[string]string{"gpu.count": "2"}, DerivedFrom: []string{"bafysrc"}}
	got := r.IndexTerms()
	for _, want := range []string{"kind:compute", "id:bafyid", "tag:gpu", "key:gpu.count", "attr:gpu.count=2",
		"derived:bafysrc", "word:gpu", "word:box", "word:stable", "word:diffusion", "word:for"} {
		if !slices.Contains(got, want) {
			t.Errorf("IndexTerms lacks %q: %v", want, got)
		}
	}
}

func TestNormalizeValidate(t *testing.T) {
	r := Resource{Kind: " Compute ", Name: " x ", Tags: []string{"GPU", "gpu", " cuda "}}
	r.Normalize()
	if r.Kind != "compute" || r.Name != "x" || !slices.Equal(r.Tags, []string{"cuda", "gpu"}) {
		t.Fatalf("normalized: %+v", r)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]Resource{
		"no kind":     {Name: "x"},
		"upper kind":  {Kind: "Compute", Name: "x"},
		"bad tag":     {Kind: "k", Name: "x", Tags: []string{"has space"}},
		"bad attr":    {Kind: "k", Name: "x", Attrs: map[string]string{"a b": "1"}},
		"bad access":  {Kind: "k", Name: "x", Access: Access{Type: "ftp"}},
		"bad derived": {Kind: "k", Name: "x", DerivedFrom: []string{"nope"}},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%s: validated", name)
		}
	}
}

func TestNewIDStable(t *testing.T) {
	a, b := NewID("owner", "h"), NewID("owner", "h")
	if a != b || a == NewID("owner", "h2") || a == NewID("other", "h") {
		t.Fatal("ID is not a function of owner and handle alone")
	}
}
