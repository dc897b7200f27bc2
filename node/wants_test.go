package node_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/crypto"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pullnet/pullnet/internal/testswarm"
	"github.com/pullnet/pullnet/node"
)

// pollUntil calls cond on a ticker until it holds or the deadline passes.
func pollUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}

// TestWantsMatch: A's want is listed by B, whose resources share its terms;
// when B advertises a resource matching it, A's want records the match; an
// unwanted want is no longer listed.
func TestWantsMatch(t *testing.T) {
	s := testswarm.New(t, 3, testswarm.Options{Config: node.Config{WatchRefind: time.Second}})
	a, b := s.Nodes[0], s.Nodes[2]
	ctx := context.Background()

	small := gpuBox()
	small.Name = "small GPU box"
	small.Attrs = map[string]string{"gpu.count": "1"}
	if _, err := b.Advertise(ctx, small); err != nil {
		t.Fatal(err)
	}
	w, err := a.Want(ctx, "kind:compute tag:gpu gpu.count>=2", "two GPUs for a week", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if w.Owner != a.ID() || w.ID == "" || w.Expires.Sub(w.Created) != 24*time.Hour {
		t.Fatalf("want = %+v", w)
	}

	listed := func(n *node.Node, q string) bool {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ws, err := n.Wants(cctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range ws {
			if x.ID == w.ID {
				if x.Owner != a.ID() || x.Description != "two GPUs for a week" || len(x.Matches) != 0 {
					t.Fatalf("listed want = %+v", x)
				}
				return true
			}
		}
		return false
	}
	pollUntil(t, 30*time.Second, "B to list A's want", func() bool { return listed(b, "") })
	if !listed(b, "tag:gpu") {
		t.Fatal("Wants(tag:gpu) misses the want")
	}
	if listed(b, "tag:fpga") {
		t.Fatal("Wants(tag:fpga) lists a gpu want")
	}
	if mine, _ := a.MyWants(ctx); len(mine) != 1 || len(mine[0].Matches) != 0 {
		t.Fatalf("MyWants before any match = %+v", mine)
	}

	big, err := b.Advertise(ctx, gpuBox())
	if err != nil {
		t.Fatal(err)
	}
	pollUntil(t, 30*time.Second, "A's want to record the match", func() bool {
		mine, _ := a.MyWants(ctx)
		return len(mine) == 1 && len(mine[0].Matches) == 1 && mine[0].Matches[0].ID == big.ID
	})

	if err := a.Unwant(ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	if err := a.Unwant(ctx, w.ID); !errors.Is(err, node.ErrNotFound) {
		t.Fatalf("second Unwant: %v", err)
	}
	if listed(b, "tag:gpu") {
		t.Fatal("B still lists a withdrawn want")
	}
	if mine, _ := a.MyWants(ctx); len(mine) != 0 {
		t.Fatalf("MyWants after Unwant = %+v", mine)
	}
	if st := b.WantStats(); st.Accepted == 0 || st.Forged+st.Replayed+st.Expired+st.Malformed+st.Flood != 0 {
		t.Fatalf("B's want stats = %+v", st)
	}
}

func TestWantBadInput(t *testing.T) {
	s := testswarm.New(t, 1, testswarm.Options{})
	n := s.Nodes[0]
	ctx := context.Background()
	for _, tc := range []struct {
		name, q, desc string
		ttl           time.Duration
	}{
		{"syntax", `"unterminated`, "", 0},
		{"not indexable", "os!=windows", "", 0},
		{"huge query", "tag:" + strings.Repeat("a", 5000), "", 0},
		{"huge description", "tag:gpu", strings.Repeat("d", node.MaxWantDescriptionLen+1), 0},
		{"too long", "tag:gpu", "", node.MaxWantTTL + time.Hour},
		{"negative", "tag:gpu", "", -time.Hour},
	} {
		if _, err := n.Want(ctx, tc.q, tc.desc, tc.ttl); !errors.Is(err, node.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", tc.name, err)
		}
	}
	for i := range node.MaxOwnWants {
		if _, err := n.Want(ctx, fmt.Sprintf("tag:t%d kind:compute", i), "", time.Hour); err != nil {
			t.Fatalf("want %d: %v", i, err)
		}
	}
	if _, err := n.Want(ctx, "tag:gpu", "", time.Hour); !errors.Is(err, node.ErrInvalid) {
		t.Fatalf("want past the cap: %v", err)
	}
	if mine, _ := n.MyWants(ctx); len(mine) != node.MaxOwnWants {
		t.Fatalf("MyWants has %d, want %d", len(mine), node.MaxOwnWants)
	}
}

// TestWantsPersist: a node's wants survive a restart on the same store.
func TestWantsPersist(t *testing.T) {
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	store := dssync.MutexWrap(ds.NewMapDatastore())
	cfg := node.Config{Key: key, Datastore: store, ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}}
	ctx := context.Background()
	n, err := node.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	w, err := n.Want(ctx, "tag:gpu", "kept", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n, err = node.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	mine, err := n.MyWants(ctx)
	if err != nil || len(mine) != 1 || mine[0].ID != w.ID || mine[0].Description != "kept" {
		t.Fatalf("MyWants after restart = %+v, %v", mine, err)
	}
}
