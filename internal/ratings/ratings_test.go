package ratings

import (
	"context"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pullnet/pullnet/protocol/signed"
)

type party struct {
	key crypto.PrivKey
	id  peer.ID
}

func newParty(t *testing.T) party {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	return party{k, id}
}

// rate makes cons's rating of a session with prov.
func rate(t *testing.T, prov, cons party, session string, score float64, at time.Time) signed.RatingRecord {
	t.Helper()
	rc, err := signed.SealReceipt(prov.key, signed.Receipt{Session: session, ResourceID: "r", Provider: prov.id, Consumer: cons.id, Issued: at.Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	r, err := signed.SealRating(cons.key, rc, score, "", at)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// opinions sums OnChange into aggregate opinions, as the trust graph does.
type opinions map[[2]peer.ID]struct {
	sum   float64
	count int
}

func (o opinions) add(c Change) {
	k := [2]peer.ID{c.Rater, c.Subject}
	v := o[k]
	v.sum += c.DeltaSum
	v.count += c.DeltaCount
	o[k] = v
}

func TestPutReplaceReopen(t *testing.T) {
	ctx := context.Background()
	store := dssync.MutexWrap(ds.NewMapDatastore())
	ops := opinions{}
	b, err := Open(ctx, Config{Store: store, OnChange: ops.add})
	if err != nil {
		t.Fatal(err)
	}
	prov, cons := newParty(t), newParty(t)
	now := time.Now()
	steps := []struct {
		rec  signed.RatingRecord
		want Outcome
	}{
		{rate(t, prov, cons, "s1", -1, now.Add(-time.Minute)), Added},
		{rate(t, prov, cons, "s1", -1, now.Add(-time.Minute)), Duplicate}, // same version again
		{rate(t, prov, cons, "s1", 0.5, now), Replaced},                   // a later version
		{rate(t, prov, cons, "s1", -1, now.Add(-time.Hour)), Duplicate},   // an older version
		{rate(t, prov, cons, "s2", 1, now), Added},                        // another session
	}
	for i, s := range steps {
		got, err := b.Put(ctx, s.rec)
		if err != nil || got != s.want {
			t.Fatalf("step %d: %v, %v; want %v", i, got, err, s.want)
		}
	}
	k := [2]peer.ID{cons.id, prov.id}
	if o := ops[k]; o.sum != 1.5 || o.count != 2 {
		t.Fatalf("opinion %+v, want sum 1.5 over 2", o)
	}
	// Reopened, the book replays the same opinion.
	again := opinions{}
	b2, err := Open(ctx, Config{Store: store, OnChange: again.add})
	if err != nil {
		t.Fatal(err)
	}
	if b2.Len() != 2 || again[k] != ops[k] {
		t.Fatalf("reopened: %d ratings, opinion %+v", b2.Len(), again[k])
	}
	got, err := b2.About(ctx, prov.id, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("about: %v, %v", got, err)
	}
}

func TestCaps(t *testing.T) {
	ctx := context.Background()
	b, err := Open(ctx, Config{Store: dssync.MutexWrap(ds.NewMapDatastore()), MaxRatings: 5, MaxPerRater: 3})
	if err != nil {
		t.Fatal(err)
	}
	prov, a, c := newParty(t), newParty(t), newParty(t)
	now := time.Now()
	for i, want := range []Outcome{Added, Added, Added, Full} {
		if got, _ := b.Put(ctx, rate(t, prov, a, string(rune('a'+i)), 1, now)); got != want {
			t.Fatalf("rater a, rating %d: %v, want %v", i, got, want)
		}
	}
	for i, want := range []Outcome{Added, Added, Full} {
		if got, _ := b.Put(ctx, rate(t, prov, c, string(rune('a'+i)), 1, now)); got != want {
			t.Fatalf("rater c, rating %d: %v, want %v", i, got, want)
		}
	}
	// A full book still takes new versions of what it holds.
	if got, _ := b.Put(ctx, rate(t, prov, a, "a", -1, now.Add(time.Second))); got != Replaced {
		t.Fatalf("replace in a full book: %v", got)
	}
	if b.Stats.Full.Load() != 2 {
		t.Fatalf("full counted %d", b.Stats.Full.Load())
	}
}

func TestSinceNewestFirstWithinBytes(t *testing.T) {
	ctx := context.Background()
	clock := time.Now()
	b, err := Open(ctx, Config{Store: dssync.MutexWrap(ds.NewMapDatastore()), Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	prov, cons := newParty(t), newParty(t)
	var sizes []int
	for i := range 5 {
		clock = clock.Add(time.Second)
		r := rate(t, prov, cons, string(rune('a'+i)), 1, clock)
		sizes = append(sizes, len(r.Envelope))
		if _, err := b.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	all, _ := b.Since(ctx, 0, 1<<20)
	if len(all) != 5 {
		t.Fatalf("since 0: %d ratings", len(all))
	}
	first, _ := signed.OpenRating(all[0], clock)
	if first.Rating.Receipt.Session != "e" {
		t.Fatalf("newest first: got session %q first", first.Rating.Receipt.Session)
	}
	two, _ := b.Since(ctx, 0, sizes[4]+sizes[3]+1)
	if len(two) != 2 {
		t.Fatalf("byte cap: %d ratings", len(two))
	}
	recent, _ := b.Since(ctx, clock.Add(-1500*time.Millisecond).UnixMilli(), 1<<20)
	if len(recent) != 2 {
		t.Fatalf("since 1.5 s ago: %d ratings", len(recent))
	}
}

func TestOpenDropsAncient(t *testing.T) {
	ctx := context.Background()
	store := dssync.MutexWrap(ds.NewMapDatastore())
	now := time.Now()
	b, _ := Open(ctx, Config{Store: store})
	prov, cons := newParty(t), newParty(t)
	if _, err := b.Put(ctx, rate(t, prov, cons, "s", 1, now)); err != nil {
		t.Fatal(err)
	}
	later := now.Add(signed.MaxRatingAge + time.Hour)
	ops := opinions{}
	b2, err := Open(ctx, Config{Store: store, Now: func() time.Time { return later }, OnChange: ops.add})
	if err != nil {
		t.Fatal(err)
	}
	if b2.Len() != 0 || len(ops) != 0 {
		t.Fatalf("ancient rating kept: %d, %v", b2.Len(), ops)
	}
	b3, _ := Open(ctx, Config{Store: store})
	if b3.Len() != 0 {
		t.Fatal("ancient rating not deleted from the store")
	}
}
