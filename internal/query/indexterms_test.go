package query

import (
	"slices"
	"testing"
)

func TestIndexTerms(t *testing.T) {
	for _, tc := range []struct {
		q    string
		want []string
	}{
		{"kind:compute tag:gpu", []string{"kind:compute", "tag:gpu"}},
		{"tag:gpu|tag:tpu os!=windows tag:gpu", []string{"tag:gpu", "tag:tpu"}},
		{"os!=windows", nil},
	} {
		q, err := Parse(tc.q)
		if err != nil {
			t.Fatal(err)
		}
		if got := q.IndexTerms(); !slices.Equal(got, tc.want) {
			t.Errorf("IndexTerms(%q) = %q, want %q", tc.q, got, tc.want)
		}
	}
}
