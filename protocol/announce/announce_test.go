package announce

import (
	"context"
	"log/slog"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/pullnet/pullnet/protocol/signed"
	"github.com/pullnet/pullnet/resource"
)

func seal(t *testing.T, key crypto.PrivKey, handle string) signed.Record {
	t.Helper()
	rec, err := signed.SealResource(key, resource.Resource{Handle: handle, Kind: "compute", Name: "GPU box", Tags: []string{"gpu"}, Seq: 1})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestValidator: what the topic validator lets through, whatever a peer
// sends.
func TestValidator(t *testing.T) {
	mn, err := mocknet.FullMeshConnected(1)
	if err != nil {
		t.Fatal(err)
	}
	defer mn.Close()
	s, err := New(context.Background(), mn.Hosts()[0], nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	owner, _, _ := crypto.GenerateEd25519Key(nil)
	ownerID, _ := peer.IDFromPrivateKey(owner)
	other, _, _ := crypto.GenerateEd25519Key(nil)
	otherID, _ := peer.IDFromPrivateKey(other)
	rec := seal(t, owner, "a")
	msg := func(from peer.ID, data []byte) *pubsub.Message {
		return &pubsub.Message{Message: &pb.Message{From: []byte(from), Data: data}}
	}
	v := s.validator("tag:gpu")
	for _, tt := range []struct {
		name string
		m    *pubsub.Message
		want pubsub.ValidationResult
	}{
		{"valid", msg(ownerID, rec.Envelope), pubsub.ValidationAccept},
		{"garbage", msg(ownerID, []byte("garbage")), pubsub.ValidationReject},
		{"announced by a non-owner", msg(otherID, rec.Envelope), pubsub.ValidationReject},
		{"oversized", msg(ownerID, make([]byte, MaxMessageSize+1)), pubsub.ValidationReject},
	} {
		if got := v(context.Background(), ownerID, tt.m); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	if got := s.validator("tag:tpu")(context.Background(), ownerID, msg(ownerID, rec.Envelope)); got != pubsub.ValidationReject {
		t.Errorf("a term the resource does not carry: %v", got)
	}
	// A flood from one publisher on one topic: the excess is rejected.
	flood := s.validator("kind:compute")
	accepted := 0
	for range MaxPerPeerPerMinute + 10 {
		if flood(context.Background(), ownerID, msg(ownerID, rec.Envelope)) == pubsub.ValidationAccept {
			accepted++
		}
	}
	if accepted != MaxPerPeerPerMinute || s.Stats.Throttled.Load() != 10 {
		t.Errorf("flood: %d accepted (want %d), %d throttled", accepted, MaxPerPeerPerMinute, s.Stats.Throttled.Load())
	}
}

// TestGossip: a subscriber hears what a connected publisher announces, on
// the topic of each of the resource's terms it watches.
func TestGossip(t *testing.T) {
	mn, err := mocknet.FullMeshConnected(2)
	if err != nil {
		t.Fatal(err)
	}
	defer mn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pubHost, subHost := mn.Hosts()[0], mn.Hosts()[1]
	pub, err := New(ctx, pubHost, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := New(ctx, subHost, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := sub.Subscribe(ctx, []string{"tag:gpu"})
	if err != nil {
		t.Fatal(err)
	}
	rec := seal(t, pubHost.Peerstore().PrivKey(pubHost.ID()), "box")
	// Without discovery a publish does not wait for peers: wait until the
	// publisher has heard of the subscription.
	topic, err := pub.join("tag:gpu")
	if err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for len(topic.ListPeers()) == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("publisher never saw the subscriber on the topic")
		case <-tick.C:
		}
	}
	go pub.Publish(ctx, rec)
	select {
	case a := <-ch:
		if a.Record.Resource.ID != rec.Resource.ID || a.Term != "tag:gpu" || a.Record.Owner != pubHost.ID() {
			t.Fatalf("got %+v", a)
		}
	case <-ctx.Done():
		t.Fatal("no announcement within 30s")
	}
}

// TestInvalidSenderPenalised: a peer that delivers announcements the
// validator rejects loses gossipsub score.
func TestInvalidSenderPenalised(t *testing.T) {
	mn, err := mocknet.FullMeshConnected(2)
	if err != nil {
		t.Fatal(err)
	}
	defer mn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	good, bad := mn.Hosts()[0], mn.Hosts()[1]
	s, err := New(ctx, good, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Subscribe(ctx, []string{"tag:gpu"}); err != nil {
		t.Fatal(err)
	}
	// The attacker runs plain gossipsub, with no validation of its own.
	raw, err := pubsub.NewGossipSub(ctx, bad)
	if err != nil {
		t.Fatal(err)
	}
	topic, err := raw.Join(Topic("tag:gpu"))
	if err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for len(topic.ListPeers()) == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("attacker never saw the topic's peer")
		case <-tick.C:
		}
	}
	for i := range 5 {
		if err := topic.Publish(ctx, []byte{byte(i), 'f', 'o', 'r', 'g', 'e', 'd'}); err != nil {
			t.Fatal(err)
		}
	}
	for s.Score(bad.ID()) >= 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("score of a peer sending forgeries stayed %v", s.Score(bad.ID()))
		case <-tick.C:
		}
	}
	if s.Stats.Rejected.Load() == 0 {
		t.Fatal("no rejection counted")
	}
}

// TestMeshPeerLeaves: scoring a mesh peer that goes away must not crash
// gossipsub's scorer (it divides by TimeInMeshQuantum).
func TestMeshPeerLeaves(t *testing.T) {
	mn, err := mocknet.FullMeshConnected(2)
	if err != nil {
		t.Fatal(err)
	}
	defer mn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := mn.Hosts()[0], mn.Hosts()[1]
	sa, err := New(ctx, a, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	sb, err := New(ctx, b, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Service{sa, sb} {
		if _, err := s.Subscribe(ctx, []string{"tag:gpu"}); err != nil {
			t.Fatal(err)
		}
	}
	topic, _ := sa.join("tag:gpu")
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	// Wait for a heartbeat to put b in a's mesh (score is read while there).
	for len(topic.ListPeers()) == 0 || sa.scores.Load() == nil {
		select {
		case <-ctx.Done():
			t.Fatal("peers never met")
		case <-tick.C:
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for len(topic.ListPeers()) != 0 {
		select {
		case <-ctx.Done():
			t.Fatal("a never noticed b leave")
		case <-tick.C:
		}
	}
	// A crash in the scorer would have ended the test binary by now.
}
