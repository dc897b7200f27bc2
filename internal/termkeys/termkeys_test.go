package termkeys

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// fakeDHT holds provider records in memory and counts lookups per key.
// Provide is called with the provider in the context, since a real DHT
// knows who it is.
type fakeDHT struct {
	mu      sync.Mutex
	records map[cid.Cid][]peer.ID
	lookups map[cid.Cid]int
	self    peer.ID
}

func newFake() *fakeDHT {
	return &fakeDHT{records: map[cid.Cid][]peer.ID{}, lookups: map[cid.Cid]int{}}
}

func (f *fakeDHT) as(p peer.ID) *fakeDHT { f.self = p; return f }

func (f *fakeDHT) Provide(_ context.Context, key cid.Cid, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.records[key] = append(f.records[key], f.self)
	return nil
}

func (f *fakeDHT) FindProvidersAsync(ctx context.Context, key cid.Cid, count int) <-chan peer.AddrInfo {
	f.mu.Lock()
	f.lookups[key]++
	recs := append([]peer.ID(nil), f.records[key]...)
	f.mu.Unlock()
	out := make(chan peer.AddrInfo)
	go func() {
		defer close(out)
		for i, p := range recs {
			if count > 0 && i >= count {
				return
			}
			select {
			case out <- peer.AddrInfo{ID: p}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

func (f *fakeDHT) totalLookups() int {
	n := 0
	for _, v := range f.lookups {
		n += v
	}
	return n
}

func peers(n int) []peer.ID {
	out := make([]peer.ID, n)
	for i := range out {
		out[i] = peer.ID(fmt.Sprintf("peer-%d", i))
	}
	return out
}

func provideAll(t *testing.T, f *fakeDHT, term string, ps []peer.ID) (rare int) {
	t.Helper()
	for _, p := range ps {
		r, err := Provide(context.Background(), f.as(p), p, term)
		if err != nil {
			t.Fatal(err)
		}
		if r {
			rare++
		}
	}
	return rare
}

func collect(f *fakeDHT, term string, count int) map[peer.ID]bool {
	got := map[peer.ID]bool{}
	for ai := range FindProviders(context.Background(), f, term, count) {
		got[ai.ID] = true
	}
	return got
}

func TestKeysDistinctAndStable(t *testing.T) {
	seen := map[cid.Cid]bool{}
	for i := range Subkeys {
		k := Key("tag:gpu", i)
		if seen[k] || !k.Equals(Key("tag:gpu", i)) {
			t.Fatalf("key %d not distinct or not stable", i)
		}
		seen[k] = true
	}
	if !Key("tag:gpu", 0).Equals(Key("tag:gpu", 0)) || Key("tag:gpu", 1).Equals(Key("tag:tpu", 1)) {
		t.Fatal("keys of different terms collide")
	}
}

func TestHomeSpreadsProviders(t *testing.T) {
	counts := make([]int, Subkeys)
	for _, p := range peers(4000) {
		counts[Home("tag:gpu", p)]++
	}
	for i, c := range counts {
		if c < 850 || c > 1150 {
			t.Fatalf("key %d is home to %d of 4000 providers: %v", i, c, counts)
		}
	}
}

// TestRareTermOneLookup: a term with few providers is provided under every
// key, and a find gets all of them from one lookup.
func TestRareTermOneLookup(t *testing.T) {
	f := newFake()
	ps := peers(5)
	if rare := provideAll(t, f, "tag:tpu", ps); rare != 5 {
		t.Fatalf("%d of 5 providers saw the term as rare", rare)
	}
	before := f.totalLookups()
	if got := collect(f, "tag:tpu", 0); len(got) != 5 {
		t.Fatalf("found %d of 5", len(got))
	}
	if n := f.totalLookups() - before; n != 1 {
		t.Fatalf("a rare-term find took %d lookups, want 1", n)
	}
}

// TestPopularTermSpreads: once a term's home keys are full, providers
// provide only under their home key, so each key holds a share; a find that
// wants a few providers takes one lookup, one that wants all takes every
// key, and the lookups of many finds spread evenly over the keys.
func TestPopularTermSpreads(t *testing.T) {
	f := newFake()
	ps := peers(1000)
	rare := provideAll(t, f, "tag:gpu", ps)
	if rare > Subkeys*RareThreshold {
		t.Fatalf("%d providers provided under every key", rare)
	}
	for i := range Subkeys {
		if n := len(f.records[Key("tag:gpu", i)]); n > 1000/Subkeys+RareThreshold*Subkeys || n < 1000/Subkeys/2 {
			t.Fatalf("key %d holds %d of 1000 providers", i, n)
		}
	}
	if got := collect(f, "tag:gpu", 0); len(got) != 1000 {
		t.Fatalf("a find for all found %d of 1000", len(got))
	}
	clear(f.lookups)
	const finds = 2000
	for range finds {
		if got := collect(f, "tag:gpu", 20); len(got) != 20 {
			t.Fatalf("a find for 20 found %d", len(got))
		}
	}
	if n := f.totalLookups(); n != finds {
		t.Fatalf("%d finds for 20 took %d lookups, want one each", finds, n)
	}
	for i := range Subkeys {
		if n := f.lookups[Key("tag:gpu", i)]; n < finds/Subkeys*8/10 || n > finds/Subkeys*12/10 {
			t.Fatalf("key %d drew %d of %d lookups: not spread", i, n, finds)
		}
	}
}

// TestMiddleTermGoesOn: a term whose first key holds RareThreshold or
// more but fewer than wanted goes on to the other keys until it has enough.
func TestMiddleTermGoesOn(t *testing.T) {
	f := newFake()
	provideAll(t, f, "kind:compute", peers(150))
	clear(f.lookups)
	got := collect(f, "kind:compute", 100)
	if len(got) != 100 {
		t.Fatalf("found %d, want 100", len(got))
	}
	if n := f.totalLookups(); n < 2 {
		t.Fatalf("%d lookups: the find stopped at the first key", n)
	}
}
