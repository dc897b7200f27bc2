package query

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/pullnet/pullnet/resource"
)

func TestLookupTerms(t *testing.T) {
	tests := []struct {
		q    string
		want []string // nil: ErrNotIndexable
	}{
		{"kind:compute", []string{"kind:compute"}},
		{"KIND:Compute", []string{"kind:compute"}},
		{"tag:GPU", []string{"tag:gpu"}},
		{"id:bafkreiX", []string{"id:bafkreiX"}},
		{"derived:bafkreiY", []string{"derived:bafkreiY"}},
		{"Region=EU", []string{"attr:region=eu"}},
		{"gpu.count=2.0", []string{"attr:gpu.count=2"}},
		{`owner="ada lovelace"`, []string{"attr:owner=ada lovelace"}},
		{"gpu.count>=2", []string{"key:gpu.count"}},
		{"GPU.Count<4", []string{"key:gpu.count"}},
		{"diffusion", []string{"word:diffusion"}},
		{`"Stable Diffusion"`, []string{"word:diffusion"}},
		// Interior words come first: "conductors" could be part of
		// "superconductors" in a match, "for" cannot be part of anything.
		{`"conductors for fun"`, []string{"word:for"}},
		{`"a stable b"`, []string{"word:stable"}},
		{`"-stable-"`, []string{"word:stable"}},
		{`"naïve café"`, []string{"word:naïve"}},

		// Selectivity: id > derived > attr > tag > word > key > kind.
		{"kind:compute tag:gpu", []string{"tag:gpu"}},
		{"kind:compute gpu.count>=2", []string{"key:gpu.count"}},
		{"gpu.count>=2 diffusion", []string{"word:diffusion"}},
		{"diffusion tag:gpu", []string{"tag:gpu"}},
		{"tag:gpu region=eu", []string{"attr:region=eu"}},
		{"region=eu derived:bafkreiY", []string{"derived:bafkreiY"}},
		{"derived:bafkreiY id:bafkreiX kind:model", []string{"id:bafkreiX"}},
		{"kind:compute tag:gpu gpu.count>=2 \"stable diffusion\"", []string{"tag:gpu"}},
		// A group ranks by its least selective alternative, then by size.
		{"id:a|kind:model tag:gpu", []string{"tag:gpu"}},
		{"tag:a|tag:b|tag:c tag:d|tag:e", []string{"tag:d", "tag:e"}},
		{"tag:a|tag:b tag:d|tag:e", []string{"tag:a", "tag:b"}},
		{"tag:gpu|tag:tpu", []string{"tag:gpu", "tag:tpu"}},
		{"tag:gpu|tag:GPU", []string{"tag:gpu"}},
		{"tag:gpu|llama", []string{"tag:gpu", "word:llama"}},
		// Groups that cannot be looked up are passed over.
		{"region!=eu kind:model", []string{"kind:model"}},
		{"tag:gpu|os!=windows kind:model", []string{"kind:model"}},
		{"ab kind:model", []string{"kind:model"}},
		{`"a b c" tag:x`, []string{"tag:x"}},
		// Nothing to look up.
		{"region!=eu", nil},
		{"ab", nil},
		{`"to be"`, nil},
		{"kind:model|os!=windows", nil},
	}
	for _, tt := range tests {
		got, err := mustParse(t, tt.q).LookupTerms()
		if tt.want == nil {
			if !errors.Is(err, ErrNotIndexable) {
				t.Errorf("Parse(%q).LookupTerms() = %q, %v; want ErrNotIndexable", tt.q, got, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Parse(%q).LookupTerms() = %q, %v; want %q", tt.q, got, err, tt.want)
		}
	}
}

// TestLookupWordIsIndexed checks that the word picked for free text is one
// resource.Words yields for it, so it is spelled as the index spells it.
func TestLookupWordIsIndexed(t *testing.T) {
	for _, text := range []string{"Stable Diffusion", "ÀÉÎ õü", "\u212Aelvin scale", "İstanbul", "x-ray_vision 3000", "ⱥⱥⱥ"} {
		q := mustParse(t, `"`+text+`"`)
		w, ok := lookupWord(q.groups[0][0].value)
		if !ok || !slices.Contains(resource.Words(text), w) {
			t.Errorf("lookupWord(%q) = %q, %v; want one of %q", text, w, ok, resource.Words(text))
		}
	}
}

// TestLookupReachable is the property the finder relies on: a resource
// that matches a query is advertised under one of the query's lookup terms.
// It holds for resources whose text is made of whole words that are within
// resource.MaxWords and whose attribute values are spelled as queries spell
// them; see LookupTerms for why the index cannot promise more.
func TestLookupReachable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cat := genCatalog(rng, 200)
	for _, w := range testWords {
		for _, v := range testWords {
			if w != v && strings.Contains(v, w) {
				t.Fatalf("test vocabulary: %q contains %q", v, w)
			}
		}
	}
	index := make([]map[string]bool, len(cat))
	for i, r := range cat {
		if n := len(resource.Words(r.Name + " " + r.Description)); n > resource.MaxWords {
			t.Fatalf("generated resource has %d words, more than resource.MaxWords", n)
		}
		index[i] = map[string]bool{}
		for _, term := range r.IndexTerms() {
			index[i][term] = true
		}
	}

	// Every indexable term, on its own, is in the index of every resource
	// it matches.
	for range 500 {
		s := genTerm(rng, cat)
		q := mustParse(t, s)
		term, sel := q.groups[0][0].lookup()
		if sel == selNone {
			continue
		}
		for i, r := range cat {
			if q.Match(r) && !index[i][term] {
				t.Fatalf("%q matches resource %q (%q %q) but it is not indexed under %q", s, r.ID, r.Name, r.Description, term)
			}
		}
	}

	// Every matching resource is reachable through the lookup terms of
	// whole queries.
	var queries, matches int
	for range 500 {
		s := genQuery(rng, cat)
		q := mustParse(t, s)
		terms, err := q.LookupTerms()
		if err != nil {
			continue
		}
		queries++
		for i, r := range cat {
			if !q.Match(r) {
				continue
			}
			matches++
			if !slices.ContainsFunc(terms, func(term string) bool { return index[i][term] }) {
				t.Fatalf("%q matches resource %q (%q %q %v %v) but it is indexed under none of %q",
					s, r.ID, r.Name, r.Description, r.Tags, r.Attrs, terms)
			}
		}
	}
	t.Logf("%d indexable queries, %d matches", queries, matches)
	// Guard against a generator that stops producing useful cases.
	if queries < 300 || matches < 1000 {
		t.Errorf("only %d indexable queries and %d matches; the property was barely exercised", queries, matches)
	}
}
