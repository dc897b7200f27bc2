package query

import (
	"slices"
	"unicode"
	"unicode/utf8"

	"github.com/pullnet/pullnet/resource"
)

// How much a free-text hit counts, by where it is. A hit in the name says
// more about a resource than one in its description, and a hit that is a
// whole word or phrase more than one inside a longer word.
const (
	scoreNameExact = 1.0 // the whole name, ignoring case
	scoreNameWord  = 0.8 // whole words of the name
	scoreName      = 0.6 // inside the name
	scoreDescWord  = 0.4 // whole words of the description
	scoreDesc      = 0.3 // inside the description
)

// Score rates how relevant r is to q, in (0, 1] when q matches r and 0 when
// it does not. It is deterministic and depends only on q and r.
//
// Only free text and tags rank; kinds, IDs, derivation and attributes are
// filters that every match passes alike, so groups of filters alone do not
// count. Every other group gets a score from its alternatives' scores s:
// free text scores by where it is found (see the constants above; the best
// place counts), and any other alternative 1 if r satisfies it and 0 if not.
// The group scores 0.75·max(s) + 0.25·mean(s), so the best hit dominates and
// every further hit (another of several ORed tags, say) adds to it; max(s)
// is positive since r matches the group. The query scores the mean over
// these groups, or 1 if there are none.
func (q *Query) Score(r *resource.Resource) float64 {
	if !q.Match(r) {
		return 0
	}
	var sum float64
	n := 0
	for _, g := range q.groups {
		if !slices.ContainsFunc(g, func(t term) bool { return t.ranks() }) {
			continue
		}
		var best, total float64
		for i := range g {
			s := g[i].score(r)
			best = max(best, s)
			total += s
		}
		sum += 0.75*best + 0.25*total/float64(len(g))
		n++
	}
	if n == 0 {
		return 1
	}
	return sum / float64(n)
}

// ranks reports whether t says how relevant a match is, beyond whether it
// matches.
func (t *term) ranks() bool {
	return t.field == fieldText || t.field == fieldTag
}

// score rates one term against r, in [0, 1].
func (t *term) score(r *resource.Resource) float64 {
	if t.field != fieldText {
		if t.match(r) {
			return 1
		}
		return 0
	}
	if end, ok := lowerPrefix(r.Name, t.value); ok && end == len(r.Name) {
		return scoreNameExact
	}
	if found, word := findLower(r.Name, t.value); found {
		if word {
			return scoreNameWord
		}
		return scoreName
	}
	if found, word := findLower(r.Description, t.value); found {
		if word {
			return scoreDescWord
		}
		return scoreDesc
	}
	return 0
}

// findLower reports whether strings.ToLower(s) contains lower and whether
// some occurrence stands as whole words, with no letter or digit right
// before or after it.
func findLower(s, lower string) (found, word bool) {
	for from := 0; from <= len(s); {
		start, end := indexLower(s, lower, from)
		if start < 0 {
			return found, false
		}
		found = true
		if !isWordRune(lastRune(s[:start])) && !isWordRune(firstRune(s[end:])) {
			return true, true
		}
		_, size := utf8.DecodeRuneInString(s[start:])
		from = start + size
	}
	return found, false
}

// isWordRune reports whether r is part of a word as resource.Words splits
// text.
func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// firstRune returns the first rune of s, or -1 if s is empty.
func firstRune(s string) rune {
	if s == "" {
		return -1
	}
	r, _ := utf8.DecodeRuneInString(s)
	return r
}

// lastRune returns the last rune of s, or -1 if s is empty.
func lastRune(s string) rune {
	if s == "" {
		return -1
	}
	r, _ := utf8.DecodeLastRuneInString(s)
	return r
}
