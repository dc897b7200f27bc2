package catalog

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/pullnet/pullnet/internal/query"
	"github.com/pullnet/pullnet/internal/store"
	"github.com/pullnet/pullnet/protocol/signed"
	"github.com/pullnet/pullnet/resource"
)

func seal(t testing.TB, key crypto.PrivKey, r resource.Resource) signed.Record {
	t.Helper()
	rec, err := signed.SealResource(key, r)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestPersistsAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir()
	key, _, _ := crypto.GenerateEd25519Key(nil)
	pds, err := store.OpenPebble(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(ctx, pds)
	if err != nil {
		t.Fatal(err)
	}
	keep := seal(t, key, resource.Resource{Handle: "a", Kind: "dataset", Name: "kept"})
	gone := seal(t, key, resource.Resource{Handle: "b", Kind: "dataset", Name: "deleted"})
	for _, r := range []signed.Record{keep, gone} {
		if err := c.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := c.Delete(ctx, gone.Resource.ID); !ok || err != nil {
		t.Fatalf("delete: %v %v", ok, err)
	}
	if ok, _ := c.Delete(ctx, gone.Resource.ID); ok {
		t.Fatal("deleted twice")
	}
	if err := pds.Close(); err != nil {
		t.Fatal(err)
	}
	pds, err = store.OpenPebble(path)
	if err != nil {
		t.Fatal(err)
	}
	defer pds.Close()
	c, err = Open(ctx, pds)
	if err != nil {
		t.Fatal(err)
	}
	got := c.List()
	if len(got) != 1 || got[0].ID != keep.Resource.ID || got[0].Name != "kept" {
		t.Fatalf("after reopen: %+v", got)
	}
	if r, ok := c.ByHandle("a"); !ok || r.Resource.ID != keep.Resource.ID {
		t.Fatal("ByHandle lost the record")
	}
}

func TestMatchAndTermsSkipExpired(t *testing.T) {
	ctx := context.Background()
	c, err := Open(ctx, dssync.MutexWrap(ds.NewMapDatastore()))
	if err != nil {
		t.Fatal(err)
	}
	key, _, _ := crypto.GenerateEd25519Key(nil)
	live := seal(t, key, resource.Resource{Handle: "live", Kind: "compute", Name: "GPU box", Tags: []string{"gpu"}})
	old := seal(t, key, resource.Resource{Handle: "old", Kind: "compute", Name: "old box", Tags: []string{"gpu", "legacy"},
		Expires: time.Now().Add(-time.Minute)})
	for _, r := range []signed.Record{live, old} {
		if err := c.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	q, _ := query.Parse("tag:gpu")
	got := c.Match(q, 10)
	if len(got) != 1 || string(got[0]) != string(live.Envelope) {
		t.Fatalf("match returned %d envelopes, want the live one only", len(got))
	}
	terms := c.Terms()
	if slices.Contains(terms, "tag:legacy") || !slices.Contains(terms, "tag:gpu") || !slices.IsSorted(terms) {
		t.Fatalf("terms = %v", terms)
	}
	if len(c.List()) != 2 {
		t.Fatal("List should still show the expired resource to its owner")
	}
}

// BenchmarkMatch10k answers one find against a catalog of 10,000 signed
// resources: evaluate the query on each, rank the hits, collect the
// envelopes to send.
func BenchmarkMatch10k(b *testing.B) {
	ctx := context.Background()
	c, err := Open(ctx, dssync.MutexWrap(ds.NewMapDatastore()))
	if err != nil {
		b.Fatal(err)
	}
	key, _, _ := crypto.GenerateEd25519Key(nil)
	kinds := []string{"compute", "dataset", "model", "service", "skill"}
	tags := []string{"gpu", "cpu", "audio", "nlp", "vision", "eu", "us", "cuda"}
	for i := range 10_000 {
		r := resource.Resource{
			Handle: fmt.Sprint(i), Kind: kinds[i%len(kinds)],
			Name:        fmt.Sprintf("resource %d", i),
			Description: []string{"stable diffusion server", "bird song recordings", "a small language model", "lab microscope"}[i%4],
			Tags:        []string{tags[i%len(tags)], tags[(i/5)%len(tags)]},
			Attrs:       map[string]string{"gpu.count": fmt.Sprint((i / 10) % 8), "region": []string{"eu", "us"}[i%2]},
		}
		if err := c.Put(ctx, seal(b, key, r)); err != nil {
			b.Fatal(err)
		}
	}
	q, err := query.Parse(`kind:compute tag:gpu gpu.count>=2 "stable diffusion"`)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		n = len(c.Match(q, 100))
	}
	b.ReportMetric(float64(n), "results")
}
