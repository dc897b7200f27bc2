package finder

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/pullnet/pullnet/internal/query"
	"github.com/pullnet/pullnet/protocol/signed"
	"github.com/pullnet/pullnet/resource"
)

func seal(t *testing.T, key crypto.PrivKey, seq uint64, mut func(*resource.Resource)) signed.Record {
	t.Helper()
	r := resource.Resource{Handle: "h", Kind: "compute", Name: "GPU box", Tags: []string{"gpu"}, Seq: seq}
	if mut != nil {
		mut(&r)
	}
	rec, err := signed.SealResource(key, r)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestVerify checks what a finder refuses to pass on as a result, whatever a
// provider answers.
func TestVerify(t *testing.T) {
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	h, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	f := New(h, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	q, err := query.Parse("kind:compute tag:gpu")
	if err != nil {
		t.Fatal(err)
	}
	owner, _, _ := crypto.GenerateEd25519Key(nil)
	ownerID, _ := peer.IDFromPrivateKey(owner)
	other, _, _ := crypto.GenerateEd25519Key(nil)
	otherID, _ := peer.IDFromPrivateKey(other)

	v2 := seal(t, owner, 2, nil)
	v1 := seal(t, owner, 1, nil)
	expired := seal(t, owner, 3, func(r *resource.Resource) { r.Handle = "old"; r.Expires = time.Now().Add(-time.Hour) })
	nomatch := seal(t, owner, 1, func(r *resource.Resource) { r.Handle = "cpu"; r.Tags = []string{"cpu"} })

	steps := []struct {
		name     string
		provider peer.ID
		env      []byte
		want     bool
		counter  func() int64
	}{
		{"valid", ownerID, v2.Envelope, true, nil},
		{"older seq after newer", ownerID, v1.Envelope, false, f.Stats.Stale.Load},
		{"same seq again", ownerID, v2.Envelope, true, nil},
		{"answered by a non-owner", otherID, v2.Envelope, false, f.Stats.NotOwner.Load},
		{"garbage", ownerID, []byte("not an envelope"), false, f.Stats.BadRecord.Load},
		{"expired", ownerID, expired.Envelope, false, f.Stats.Expired.Load},
		{"does not match", ownerID, nomatch.Envelope, false, f.Stats.NoMatch.Load},
	}
	for _, s := range steps {
		var before int64
		if s.counter != nil {
			before = s.counter()
		}
		_, ok := f.verify(q, s.provider, s.env)
		if ok != s.want {
			t.Errorf("%s: verify = %v, want %v", s.name, ok, s.want)
		}
		if s.counter != nil && s.counter() != before+1 {
			t.Errorf("%s: drop not counted", s.name)
		}
	}
}

func TestSeqCacheBounded(t *testing.T) {
	c := newSeqCache(10)
	for i := range 100 {
		c.offer(string(rune('a'+i)), 1)
	}
	if len(c.seqs) > 10 {
		t.Fatalf("cache grew to %d entries, cap 10", len(c.seqs))
	}
	c.offer("x", 5)
	if c.offer("x", 4) {
		t.Fatal("older seq accepted")
	}
	if !c.offer("x", 5) || !c.offer("x", 6) {
		t.Fatal("same or newer seq refused")
	}
}
