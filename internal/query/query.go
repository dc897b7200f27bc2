// Package query is the query language of pullnet's find: it parses a query
// string, evaluates it against resources, ranks the matches and picks the
// index terms whose DHT providers a finder should ask.
//
// A query is a list of terms separated by whitespace. All terms must hold
// (AND); terms joined by "|", with or without spaces around it, form a group
// of which at least one must hold (OR). A query is thus an AND of OR-groups.
// The terms are:
//
//	kind:X        the resource's kind is X (case-insensitive)
//	tag:X         the resource has tag X (case-insensitive)
//	id:X          the resource's ID is X
//	derived:X     the resource derives from the resource with ID X
//	KEY OP VALUE  an attribute comparison, OP one of = != < <= > >=, with no
//	              spaces around OP: gpu.count>=2, region=eu, os!=windows
//	"some text"   free text: a case-insensitive substring of the name or
//	              the description; \" and \\ escape inside the quotes
//	word          a bare word that is none of the above is free text too
//
// Attribute keys match case-insensitively. A comparison is numeric when both
// the query's value and the resource's value are numbers (strconv.ParseFloat,
// NaN excepted), and a case-insensitive string comparison otherwise, ordered
// lexicographically on the lowercased strings. A resource without the
// attribute matches only !=. Values may be double-quoted: owner="ada lovelace".
//
// Examples:
//
//	kind:compute tag:gpu gpu.count>=2 "stable diffusion"
//	tag:gpu|tag:tpu region=eu
//	kind:dataset derived:bafkrei... license!=proprietary
package query

import (
	"errors"
	"fmt"
)

// Limits on a query. They bound the work one incoming find can cause on
// every resource of a catalog.
const (
	// MaxLen is the longest query in bytes, both as written and in its
	// canonical form (String).
	MaxLen = 4096
	// MaxTerms is the most terms a query may have, counting every
	// alternative of every group.
	MaxTerms = 64
)

// ErrNotIndexable is returned by LookupTerms for a query that has no group
// the DHT index can answer.
var ErrNotIndexable = errors.New("query cannot be looked up in the index: add a term every result must have " +
	"(kind:, tag:, id:, derived:, key=value, key>value, or a word of at least 3 letters) " +
	"that is not ORed with a term lacking one (such as key!=value)")

// SyntaxError describes a malformed query. Parse returns one for every
// syntax problem.
type SyntaxError struct {
	// Pos is the 1-based column, counted in characters (runes), where the
	// problem starts. It is one past the last character for problems at the
	// end of the query.
	Pos int
	// Msg says what is wrong.
	Msg string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("position %d: %s", e.Pos, e.Msg)
}

// Query is a parsed query. It is immutable and safe for concurrent use.
// The zero Query is not valid; get one from Parse.
type Query struct {
	// groups are the OR-groups in the order they were written, each with
	// its alternatives in the order they were written.
	groups [][]term
	// eval holds the same groups sorted so that cheap tests run first;
	// Match stops at the first group that fails.
	eval [][]term
	// canon is the canonical form, computed once because String is sent
	// with every find.
	canon string
}

// field is what a term tests.
type field uint8

const (
	fieldText field = iota
	fieldKind
	fieldTag
	fieldID
	fieldDerived
	fieldAttr
)

// op is an attribute comparison operator.
type op uint8

const (
	opEq op = iota
	opNe
	opLt
	opLe
	opGt
	opGe
)

func (o op) String() string {
	return [...]string{"=", "!=", "<", "<=", ">", ">="}[o]
}

// term is one test of a resource. Everything Match needs is computed when
// the term is parsed.
type term struct {
	field field
	op    op // fieldAttr only
	// key is the lowercased attribute key (fieldAttr only).
	key string
	// value is lowercased for fieldKind, fieldTag and fieldText, and as
	// written for the others.
	value string
	// fold is value lowercased, for case-insensitive attribute comparisons
	// (fieldAttr only).
	fold string
	// num is value as a number when isNum (fieldAttr only).
	num   float64
	isNum bool
}

// String returns the canonical form of q: groups separated by one space,
// alternatives joined by "|", prefixes, attribute keys, kinds, tags and free
// text lowercased, and values quoted only where they must be. Parsing it
// gives a query equal to q, with the same String.
func (q *Query) String() string { return q.canon }
