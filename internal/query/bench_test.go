package query

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkMatchCatalog10k evaluates one realistic query against a whole
// catalog per op, which is what a node does for every incoming find.
func BenchmarkMatchCatalog10k(b *testing.B) {
	cat := genCatalog(rand.New(rand.NewPCG(3, 4)), 10_000)
	q := mustParse(b, `kind:compute tag:gpu gpu.count>=2 "stable diffusion"`)
	want := 0
	for _, r := range cat {
		if q.Match(r) {
			want++
		}
	}
	if want == 0 {
		b.Fatal("the query matches nothing in the catalog; the benchmark would measure only the kind test")
	}
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		for _, r := range cat {
			if q.Match(r) {
				n++
			}
		}
		if n != want {
			b.Fatalf("%d matches, want %d", n, want)
		}
	}
}

// BenchmarkMatchTextCatalog10k is the worst case for Match: free text
// alone, so every name and description is scanned.
func BenchmarkMatchTextCatalog10k(b *testing.B) {
	cat := genCatalog(rand.New(rand.NewPCG(3, 4)), 10_000)
	q := mustParse(b, `"stable diffusion"|llama|"naïve café"`)
	b.ReportAllocs()
	for b.Loop() {
		for _, r := range cat {
			q.Match(r)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(`kind:compute tag:gpu|tag:tpu gpu.count>=2 region!=us "stable diffusion"`); err != nil {
			b.Fatal(err)
		}
	}
}
