package query

import (
	"cmp"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/pullnet/pullnet/resource"
)

// Match reports whether r satisfies q. It does not allocate: everything
// about the query was prepared by Parse, and case-insensitive comparisons
// lowercase the resource's strings as they go instead of copying them.
//
// Comparisons are against r as it is, so kinds and tags match reliably only
// on a normalized resource (resource.Resource.Normalize), as any resource
// from the network is.
func (q *Query) Match(r *resource.Resource) bool {
	for _, g := range q.eval {
		if !matchAny(g, r) {
			return false
		}
	}
	return true
}

func matchAny(g []term, r *resource.Resource) bool {
	for i := range g {
		if g[i].match(r) {
			return true
		}
	}
	return false
}

func (t *term) match(r *resource.Resource) bool {
	switch t.field {
	case fieldKind:
		return equalLower(r.Kind, t.value)
	case fieldTag:
		for _, tag := range r.Tags {
			if equalLower(tag, t.value) {
				return true
			}
		}
		return false
	case fieldID:
		return r.ID == t.value
	case fieldDerived:
		for _, d := range r.DerivedFrom {
			if d == t.value {
				return true
			}
		}
		return false
	case fieldAttr:
		return t.matchAttr(r.Attrs)
	}
	return containsLower(r.Name, t.value) || containsLower(r.Description, t.value)
}

// matchAttr compares the attribute t.key of attrs with t's value. Keys are
// case-insensitive, so a resource could hold several keys that lowercase to
// t.key; the term holds if any of them satisfies it, except that != holds
// only if none of them equals the value. That makes != exactly the negation
// of =, and makes a missing attribute match != and nothing else.
func (t *term) matchAttr(attrs map[string]string) bool {
	want := t.op != opNe
	// Keys are usually written in lowercase: try the direct lookup before
	// walking the map for other spellings.
	if v, ok := attrs[t.key]; ok && t.compare(v) {
		return want
	}
	for k, v := range attrs {
		if k != t.key && equalLower(k, t.key) && t.compare(v) {
			return want
		}
	}
	return !want
}

// compare applies t's operator to an attribute value v, with != read as =
// (matchAttr negates it).
func (t *term) compare(v string) bool {
	var c int
	if n, ok := t.numberOf(v); ok {
		c = cmp.Compare(n, t.num)
	} else if t.isNum && t.op != opEq && t.op != opNe {
		// An order against a number asks for a quantity: "many" is not
		// >= 2, whatever its spelling sorts after.
		return false
	} else {
		c = compareLower(v, t.fold)
	}
	switch t.op {
	case opLt:
		return c < 0
	case opLe:
		return c <= 0
	case opGt:
		return c > 0
	case opGe:
		return c >= 0
	}
	return c == 0
}

// numberOf returns v as a number if the comparison is numeric: if t's value
// is a number and so is v. It skips parsing v when t's value is not.
func (t *term) numberOf(v string) (float64, bool) {
	if !t.isNum {
		return 0, false
	}
	return parseNumber(v)
}

// parseNumber reports whether s is a number as strconv.ParseFloat reads
// it, NaN excepted, and returns its value. It calls ParseFloat only for
// strings that can succeed, because a failing ParseFloat allocates its error
// and Match sees many attribute values that are words, versions or dates.
func parseNumber(s string) (float64, bool) {
	if !maybeNumber(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) { // NaN would compare unequal to everything
		return 0, false
	}
	return f, true
}

// maybeNumber is a quick test that is false for most strings ParseFloat
// rejects and true for all it accepts: decimal numbers, infinities, and any
// string with a hex prefix or an underscore, which ParseFloat itself must
// judge.
func maybeNumber(s string) bool {
	u := s
	if u != "" && (u[0] == '+' || u[0] == '-') {
		u = u[1:]
	}
	switch {
	case strings.EqualFold(u, "inf"), strings.EqualFold(u, "infinity"):
		return true
	case len(u) > 1 && u[0] == '0' && (u[1] == 'x' || u[1] == 'X'), strings.IndexByte(u, '_') >= 0:
		return true
	}
	// [digits] [. [digits]] with at least one digit, then [e [sign] digits].
	i, digits := skipDigits(u, 0)
	if i < len(u) && u[i] == '.' {
		var more int
		i, more = skipDigits(u, i+1)
		digits += more
	}
	if digits == 0 {
		return false
	}
	if i < len(u) && (u[i] == 'e' || u[i] == 'E') {
		i++
		if i < len(u) && (u[i] == '+' || u[i] == '-') {
			i++
		}
		var exp int
		if i, exp = skipDigits(u, i); exp == 0 {
			return false
		}
	}
	return i == len(u)
}

// skipDigits returns the offset of the first non-digit at or after i and
// how many digits it skipped.
func skipDigits(s string, i int) (int, int) {
	j := i
	for j < len(s) && '0' <= s[j] && s[j] <= '9' {
		j++
	}
	return j, j - i
}

// Case-insensitive comparisons below follow strings.ToLower, rune by rune:
// they compare strings.ToLower(s) with a needle that is already lowercase.
// That is also how resource.Words lowercases the words a resource is
// indexed under, so a word found by these comparisons is one the index has.
// ToLower maps every rune on its own, and maps invalid UTF-8 to U+FFFD,
// which is what utf8.DecodeRuneInString yields for it, so walking s rune by
// rune gives the same result without allocating a lowercased copy.

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// nextLower decodes the rune of s at i, lowercased, and its size in s.
func nextLower(s string, i int) (rune, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(lowerASCII(c)), 1
	}
	r, size := utf8.DecodeRuneInString(s[i:])
	return unicode.ToLower(r), size
}

// compareLower compares strings.ToLower(s) with lower, as strings.Compare
// would. UTF-8 orders byte strings as their code points, so comparing
// runes is the same as comparing bytes.
func compareLower(s, lower string) int {
	i, j := 0, 0
	for i < len(s) && j < len(lower) {
		a, n := nextLower(s, i)
		b, m := utf8.DecodeRuneInString(lower[j:])
		if a != b {
			return cmp.Compare(a, b)
		}
		i += n
		j += m
	}
	return cmp.Compare(len(s)-i, len(lower)-j)
}

// equalLower reports whether strings.ToLower(s) == lower.
func equalLower(s, lower string) bool {
	if len(s) == len(lower) && s == lower {
		return true
	}
	return compareLower(s, lower) == 0
}

// lowerPrefix reports whether strings.ToLower(s) starts with lower, and
// returns where the match ends in s.
func lowerPrefix(s, lower string) (int, bool) {
	i, j := 0, 0
	for j < len(lower) {
		if i == len(s) {
			return 0, false
		}
		c := s[i]
		if c < utf8.RuneSelf && lower[j] < utf8.RuneSelf {
			if lowerASCII(c) != lower[j] {
				return 0, false
			}
			i++
			j++
			continue
		}
		a, n := nextLower(s, i)
		b, m := utf8.DecodeRuneInString(lower[j:])
		if a != b {
			return 0, false
		}
		i += n
		j += m
	}
	return i, true
}

// indexLower returns the offsets in s where the first match of lower in
// strings.ToLower(s) at or after offset from starts and ends, or -1, -1.
// from must be at a rune boundary.
func indexLower(s, lower string, from int) (start, end int) {
	if lower == "" {
		return from, from
	}
	first := lower[0]
	if first < utf8.RuneSelf {
		upper := first
		if 'a' <= first && first <= 'z' {
			upper -= 'a' - 'A'
		}
		// Skip ahead to a byte that can start a match: the needle's first
		// byte in either case, or any non-ASCII byte since a few non-ASCII
		// runes lowercase to ASCII (the Kelvin sign to k).
		for i := from; i < len(s); i++ {
			c := s[i]
			if c != first && c != upper && c < utf8.RuneSelf {
				continue
			}
			if end, ok := lowerPrefix(s[i:], lower); ok {
				return i, i + end
			}
			if c >= utf8.RuneSelf {
				_, size := utf8.DecodeRuneInString(s[i:])
				i += size - 1
			}
		}
		return -1, -1
	}
	for i := from; i < len(s); {
		if end, ok := lowerPrefix(s[i:], lower); ok {
			return i, i + end
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return -1, -1
}

// containsLower reports whether strings.ToLower(s) contains lower.
func containsLower(s, lower string) bool {
	start, _ := indexLower(s, lower, 0)
	return start >= 0
}
