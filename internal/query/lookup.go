package query

import (
	"slices"
	"unicode/utf8"

	"github.com/pullnet/pullnet/resource"
)

// selectivity ranks index terms by how few resources they are expected to
// match, most selective first.
type selectivity int

const (
	selID selectivity = iota
	selDerived
	selAttr
	selTag
	selWord
	selKey
	selKind
	selNone // not indexable
)

// LookupTerms returns the index terms (resource.Term strings, as
// resource.Resource.IndexTerms produces them) whose DHT providers a finder
// should ask: one term per alternative of one group, so that the union of
// their providers covers every resource that matches the group, and hence
// the query. Duplicate terms are listed once.
//
// The group is one whose every alternative is indexable, and among those the
// most selective: ranked by its least selective alternative (id:, then
// derived:, attr: for key=value, tag:, word:, key: for the other comparisons
// except !=, and kind:), then by fewer alternatives, then by position in the
// query. A free-text alternative is indexed under one word:W, where W is a
// word as resource.Words splits the text, at least resource.MinWordLen
// characters long: the longest word that the text has whole (with
// separators on both sides within the text), or failing that its longest
// word.
//
// The index is exact where Match is lenient, so a few matches can be out of
// reach of the returned terms: an attr:key=value term finds only resources
// whose value is spelled as in the query (not "EU" for region=eu, nor "2.0"
// for gpu.count=2); free text found inside a longer word ("gpu" in "GPUs")
// is not indexed under that word; and a resource is indexed under only its
// first resource.MaxWords words.
//
// When no group is indexable, LookupTerms returns ErrNotIndexable.
func (q *Query) LookupTerms() ([]string, error) {
	var (
		best      []string
		bestSel   = selNone
		bestFound = false
	)
	for _, g := range q.groups {
		terms := make([]string, 0, len(g))
		worst := selID
		for i := range g {
			t, sel := g[i].lookup()
			worst = max(worst, sel)
			if worst == selNone {
				break
			}
			if !slices.Contains(terms, t) {
				terms = append(terms, t)
			}
		}
		if worst == selNone {
			continue
		}
		if !bestFound || worst < bestSel || worst == bestSel && len(terms) < len(best) {
			best, bestSel, bestFound = terms, worst, true
		}
	}
	if !bestFound {
		return nil, ErrNotIndexable
	}
	return best, nil
}

// lookup returns the index term that every resource t matches is
// advertised under, and how selective it is; selNone if there is none.
func (t *term) lookup() (string, selectivity) {
	switch t.field {
	case fieldKind:
		return resource.Term(resource.TermKind, t.value), selKind
	case fieldTag:
		return resource.Term(resource.TermTag, t.value), selTag
	case fieldID:
		return resource.Term(resource.TermID, t.value), selID
	case fieldDerived:
		return resource.Term(resource.TermDerived, t.value), selDerived
	case fieldAttr:
		switch t.op {
		case opEq:
			return resource.AttrTerm(t.key, t.value), selAttr
		case opNe:
			// A resource without the attribute matches, and nothing
			// indexes absence.
			return "", selNone
		}
		return resource.Term(resource.TermAttrKey, t.key), selKey
	}
	if w, ok := lookupWord(t.value); ok {
		return resource.Term(resource.TermWord, w), selWord
	}
	return "", selNone
}

// lookupWord picks the word of lowercase free text to look it up by.
// A word with a separator on both sides within the text is whole in any
// text that contains it, so it is among the resource's indexed words; the
// first and last words may be parts of longer words there, so they are the
// fallback. Longer words are rarer, so they narrow the search more.
//
// resource.Words lowercases the text it splits; free text is lowercased
// already, and lowercasing twice changes nothing, so the word is spelled as
// the index spells it.
func lookupWord(text string) (string, bool) {
	var (
		best         string
		bestLen      int
		bestInterior bool
	)
	start := -1 // offset of the current word, or -1 between words
	for i := 0; i <= len(text); {
		r, size := rune(-1), 0
		if i < len(text) {
			r, size = utf8.DecodeRuneInString(text[i:])
		}
		if isWordRune(r) {
			if start < 0 {
				start = i
			}
			i += size
			continue
		}
		if start >= 0 {
			w := text[start:i]
			n := utf8.RuneCountInString(w)
			interior := start > 0 && i < len(text)
			if n >= resource.MinWordLen && (best == "" ||
				interior && !bestInterior ||
				interior == bestInterior && n > bestLen) {
				best, bestLen, bestInterior = w, n, interior
			}
			start = -1
		}
		if size == 0 {
			break
		}
		i += size
	}
	return best, best != ""
}
