package query

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Parse parses a query. Every syntax problem is reported as a *SyntaxError.
func Parse(s string) (*Query, error) {
	if len(s) > MaxLen {
		// Point at the character that crosses the limit, not into its middle.
		i := MaxLen
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		return nil, errorAt(s, i, "query is longer than %d bytes", MaxLen)
	}
	if !utf8.ValidString(s) {
		// Rejecting bad UTF-8 up front keeps positions and case folding
		// well defined everywhere else.
		for i, r := range s {
			if r == utf8.RuneError {
				if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
					return nil, errorAt(s, i, "query is not valid UTF-8")
				}
			}
		}
	}

	p := parser{src: s}
	var (
		groups [][]term
		starts []int // byte offset where each term was written, in order
		cur    []term
		orAt   = -1 // offset of a "|" still waiting for its right-hand term
	)
	for {
		p.skipSpace()
		if p.pos == len(s) {
			break
		}
		start := p.pos
		if s[start] == '|' {
			if len(cur) == 0 || orAt >= 0 {
				return nil, p.errorf(start, "missing term before |")
			}
			orAt = start
			p.pos++
			continue
		}
		if len(starts) == MaxTerms {
			return nil, p.errorf(start, "more than %d terms", MaxTerms)
		}
		t, err := p.term()
		if err != nil {
			return nil, err
		}
		starts = append(starts, start)
		if orAt >= 0 {
			cur = append(cur, t)
			orAt = -1
			continue
		}
		if len(cur) > 0 {
			groups = append(groups, cur)
		}
		cur = []term{t}
	}
	if orAt >= 0 {
		return nil, p.errorf(orAt, "missing term after |")
	}
	if len(cur) > 0 {
		groups = append(groups, cur)
	}
	if len(groups) == 0 {
		return nil, p.errorf(0, "empty query")
	}

	q := &Query{groups: groups}
	canon, over := canonical(groups)
	if over >= 0 {
		// Lowercasing can make a few characters longer in UTF-8, so a query
		// within MaxLen can outgrow it; refuse it rather than produce a
		// String that does not parse.
		return nil, p.errorf(starts[over], "query is longer than %d bytes once normalized", MaxLen)
	}
	q.canon = canon
	q.eval = evalOrder(groups)
	return q, nil
}

// errorAt builds a SyntaxError for byte offset off of s.
func errorAt(s string, off int, format string, args ...any) *SyntaxError {
	return &SyntaxError{Pos: utf8.RuneCountInString(s[:off]) + 1, Msg: fmt.Sprintf(format, args...)}
}

// parser scans a query left to right.
type parser struct {
	src string
	pos int // byte offset of the next unread character
}

func (p *parser) errorf(off int, format string, args ...any) *SyntaxError {
	return errorAt(p.src, off, format, args...)
}

// peek returns the character at the current position and its size, or
// size 0 at the end.
func (p *parser) peek() (rune, int) {
	if p.pos >= len(p.src) {
		return 0, 0
	}
	return utf8.DecodeRuneInString(p.src[p.pos:])
}

func (p *parser) skipSpace() {
	for {
		r, size := p.peek()
		if size == 0 || !unicode.IsSpace(r) {
			return
		}
		p.pos += size
	}
}

// atTermEnd reports whether the current position ends a term: the end of the
// query, whitespace or "|".
func (p *parser) atTermEnd() bool {
	r, size := p.peek()
	return size == 0 || unicode.IsSpace(r) || r == '|'
}

// term parses one term starting at the current position, which is neither
// whitespace nor "|".
func (p *parser) term() (term, error) {
	start := p.pos
	if p.src[start] == '"' {
		text, err := p.quoted()
		if err != nil {
			return term{}, err
		}
		if text == "" {
			return term{}, p.errorf(start, "empty quoted text")
		}
		return term{field: fieldText, value: strings.ToLower(text)}, nil
	}
	// Read the leading word up to whatever decides what the term is: a
	// colon (prefix:value), an operator (key OP value) or the end of the
	// term (free text).
	for !p.atTermEnd() {
		c := p.src[p.pos]
		switch {
		case c == '"':
			return term{}, p.errorf(p.pos, `unexpected " inside a word; quote the whole text or value`)
		case c == ':':
			return p.prefixed(start)
		case c == '=' || c == '<' || c == '>' || c == '!' && strings.HasPrefix(p.src[p.pos:], "!="):
			return p.comparison(start)
		}
		_, size := p.peek()
		p.pos += size
	}
	return term{field: fieldText, value: strings.ToLower(p.src[start:p.pos])}, nil
}

// prefixed parses the rest of a prefix:value term; the current position is
// the colon.
func (p *parser) prefixed(start int) (term, error) {
	name := p.src[start:p.pos]
	if name == "" {
		return term{}, p.errorf(p.pos, "missing field name before :")
	}
	f, ok := fieldOf(strings.ToLower(name))
	if !ok {
		return term{}, p.errorf(start, "unknown field %s; use kind:, tag:, id:, derived: or key=value", name)
	}
	p.pos++ // the colon
	v, err := p.value(strings.ToLower(name)+":", false)
	if err != nil {
		return term{}, err
	}
	if f == fieldKind || f == fieldTag {
		v = strings.ToLower(v)
	}
	return term{field: f, value: v}, nil
}

// fieldOf maps a lowercased prefix to its field.
func fieldOf(prefix string) (field, bool) {
	switch prefix {
	case "kind":
		return fieldKind, true
	case "tag":
		return fieldTag, true
	case "id":
		return fieldID, true
	case "derived":
		return fieldDerived, true
	}
	return 0, false
}

// comparison parses the rest of a KEY OP VALUE term; the current position is
// the operator.
func (p *parser) comparison(start int) (term, error) {
	key := p.src[start:p.pos]
	o, n := opAt(p.src[p.pos:])
	if key == "" {
		return term{}, p.errorf(p.pos, "operator %s without a key", o)
	}
	p.pos += n
	v, err := p.value(o.String(), true)
	if err != nil {
		return term{}, err
	}
	t := term{field: fieldAttr, op: o, key: strings.ToLower(key), value: v, fold: strings.ToLower(v)}
	t.num, t.isNum = parseNumber(v)
	return t, nil
}

// opAt returns the operator at the start of s and its length in bytes.
// The caller has checked that s starts with one.
func opAt(s string) (op, int) {
	two := len(s) >= 2 && s[1] == '='
	switch s[0] {
	case '!':
		return opNe, 2
	case '<':
		if two {
			return opLe, 2
		}
		return opLt, 1
	case '>':
		if two {
			return opGe, 2
		}
		return opGt, 1
	}
	return opEq, 1
}

// value parses a quoted or bare value after what (a prefix or an
// operator). After an operator a bare value may not start with another
// operator character, which catches typos such as a==b and a=>b.
func (p *parser) value(what string, afterOp bool) (string, error) {
	start := p.pos
	if start < len(p.src) && p.src[start] == '"' {
		v, err := p.quoted()
		if err != nil {
			return "", err
		}
		if v == "" {
			return "", p.errorf(start, "empty value after %s", what)
		}
		return v, nil
	}
	for !p.atTermEnd() {
		if p.src[p.pos] == '"' {
			return "", p.errorf(p.pos, `unexpected " inside a value; quote the whole value`)
		}
		_, size := p.peek()
		p.pos += size
	}
	v := p.src[start:p.pos]
	if v == "" {
		return "", p.errorf(start, "missing value after %s", what)
	}
	if afterOp && strings.ContainsRune("=<>", rune(v[0])) {
		return "", p.errorf(start, "unexpected %c after %s; quote the value if it starts with it", v[0], what)
	}
	return v, nil
}

// quoted parses a double-quoted string at the current position, which must
// be followed by the end of the term.
func (p *parser) quoted() (string, error) {
	open := p.pos
	p.pos++
	// Most quoted strings have no escapes and are returned as a slice of
	// the query; b collects the unescaped text only once one is seen.
	var b strings.Builder
	from := p.pos // start of the run not yet copied to b
	for {
		if p.pos >= len(p.src) {
			return "", p.errorf(open, "unterminated quote")
		}
		switch p.src[p.pos] {
		case '"':
			var s string
			if from == open+1 {
				s = p.src[from:p.pos]
			} else {
				b.WriteString(p.src[from:p.pos])
				s = b.String()
			}
			p.pos++
			if !p.atTermEnd() {
				return "", p.errorf(p.pos, "missing space after closing quote")
			}
			return s, nil
		case '\\':
			if p.pos+1 >= len(p.src) {
				return "", p.errorf(open, "unterminated quote")
			}
			if c := p.src[p.pos+1]; c != '"' && c != '\\' {
				return "", p.errorf(p.pos, `invalid escape; only \" and \\ are allowed inside quotes`)
			}
			b.WriteString(p.src[from:p.pos])
			b.WriteByte(p.src[p.pos+1])
			p.pos += 2
			from = p.pos
		default:
			p.pos++
		}
	}
}

// canonical renders groups in canonical form. If that is longer than MaxLen
// it returns the index, counted over all terms, of the first term that does
// not fit; otherwise over is -1.
func canonical(groups [][]term) (s string, over int) {
	var b []byte
	n := 0
	for i, g := range groups {
		if i > 0 {
			b = append(b, ' ')
		}
		for j, t := range g {
			if j > 0 {
				b = append(b, '|')
			}
			b = t.appendTo(b)
			if len(b) > MaxLen {
				return "", n
			}
			n++
		}
	}
	return string(b), -1
}

// appendTo appends the canonical form of t to b.
func (t *term) appendTo(b []byte) []byte {
	switch t.field {
	case fieldText:
		if isBareText(t.value) {
			return append(b, t.value...)
		}
		return appendQuoted(b, t.value)
	case fieldAttr:
		b = append(b, t.key...)
		b = append(b, t.op.String()...)
		if needsQuote(t.value) || strings.ContainsRune("=<>", rune(t.value[0])) {
			return appendQuoted(b, t.value)
		}
		return append(b, t.value...)
	}
	b = append(b, [...]string{fieldKind: "kind:", fieldTag: "tag:", fieldID: "id:", fieldDerived: "derived:"}[t.field]...)
	if needsQuote(t.value) {
		return appendQuoted(b, t.value)
	}
	return append(b, t.value...)
}

// needsQuote reports whether a value must be quoted to be read back whole.
func needsQuote(v string) bool {
	for _, r := range v {
		if r == '|' || r == '"' || unicode.IsSpace(r) {
			return true
		}
	}
	return false
}

// isBareText reports whether free text can be written unquoted: it must not
// contain anything that would end the word or make it a prefixed term or a
// comparison.
func isBareText(v string) bool {
	for _, r := range v {
		switch r {
		case '|', '"', ':', '=', '<', '>':
			return false
		}
		if unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// cost estimates how expensive a term is to test, so Match can try cheap,
// often decisive tests first.
func (t *term) cost() int {
	switch t.field {
	case fieldKind, fieldID:
		return 0
	case fieldTag, fieldDerived:
		return 1
	case fieldAttr:
		return 2
	}
	return 3 // free text scans the name and the description
}

// evalOrder returns copies of the groups, each with its alternatives by
// ascending cost, ordered by the cost of their dearest alternative.
func evalOrder(groups [][]term) [][]term {
	eval := make([][]term, len(groups))
	for i, g := range groups {
		eval[i] = slices.Clone(g)
		slices.SortStableFunc(eval[i], func(a, b term) int { return cmp.Compare(a.cost(), b.cost()) })
	}
	groupCost := func(g []term) int { return g[len(g)-1].cost() }
	slices.SortStableFunc(eval, func(a, b []term) int { return cmp.Compare(groupCost(a), groupCost(b)) })
	return eval
}
