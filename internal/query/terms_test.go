package query

import (
	"slices"
	"testing"
)

func TestTerms(t *testing.T) {
	q, err := Parse(`kind:Compute tag:gpu|tag:cuda gpu.count>=2 "big box" tag:gpu`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"kind:compute", "tag:gpu", "tag:cuda", "gpu.count>=2", `"big box"`}
	if got := q.Terms(); !slices.Equal(got, want) {
		t.Fatalf("Terms = %q, want %q", got, want)
	}
}
