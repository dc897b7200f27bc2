package query

import "slices"

// IndexTerms returns the index term (as LookupTerms picks them) of every
// term of q that has one, every alternative of every group, each listed
// once, in the order written. Unlike LookupTerms, which picks the fewest
// terms that cover every match, it lists them all: a want is provided under
// each, so that a provider finds it by any term its resources share with the
// want's query. Terms without an index term (key!=value) are left out.
func (q *Query) IndexTerms() []string {
	var out []string
	for _, g := range q.groups {
		for i := range g {
			t, sel := g[i].lookup()
			if sel == selNone || t == "" || slices.Contains(out, t) {
				continue
			}
			out = append(out, t)
		}
	}
	return out
}
