package query

// Terms returns the canonical form of each term of q, every alternative of
// every group, in the order written and each listed once: "tag:gpu",
// "kind:compute", "gpu.count>=2", "llama". Demand counters count queries by
// these, so a node can keep what others look for without keeping whole
// queries.
func (q *Query) Terms() []string {
	var out []string
	seen := map[string]bool{}
	var b []byte
	for _, g := range q.groups {
		for i := range g {
			b = g[i].appendTo(b[:0])
			s := string(b)
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}
