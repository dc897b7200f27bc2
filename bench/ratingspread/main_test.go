package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/pullnet/pullnet/protocol/reputation"
	"github.com/pullnet/pullnet/protocol/signed"
)

// TestTinySpread runs the whole bench on 20 nodes: every rating reaches
// every node, and what is measured adds up.
func TestTinySpread(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := Config{Nodes: 20, Degree: 4, Ratings: 2, Warmup: 1, Latency: 5 * time.Millisecond,
		Timeout: 10 * time.Second, Seed: 7} // no settle, no tail: nothing but polling
	r, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.DegMin != 4 || r.DegMax != 4 {
		t.Errorf("degrees %d–%d, want 4", r.DegMin, r.DegMax)
	}
	if r.RTT < 2*cfg.Latency {
		t.Errorf("RTT %v below twice the link latency %v", r.RTT, cfg.Latency)
	}
	if len(r.Rows) != cfg.Ratings {
		t.Fatalf("%d rows, want %d", len(r.Rows), cfg.Ratings)
	}
	for i, row := range r.Rows {
		if row.Reached != cfg.Nodes-1 {
			t.Errorf("rating %d reached %d of %d other nodes", i, row.Reached, cfg.Nodes-1)
		}
		for q := 1; q < len(row.Times); q++ {
			if row.Times[q] < row.Times[q-1] || row.Times[q-1] < 0 {
				t.Errorf("rating %d: times %v not increasing", i, row.Times)
			}
		}
		if row.Times[0] < cfg.Latency {
			t.Errorf("rating %d: half the nodes had it after %v, less than one link's latency", i, row.Times[0])
		}
		// Every node but the publisher took its first copy off the wire.
		if got := row.Copies - row.Dups; got != int64(cfg.Nodes-1) {
			t.Errorf("rating %d: %d first copies, want %d", i, got, cfg.Nodes-1)
		}
		// Without a tail the window ends when the last node has stored
		// the rating: every first copy has arrived, later duplicates may not.
		if first := row.Copies - row.Dups; row.Bytes < first*int64(r.MsgSize) || row.MsgBytes > row.Bytes {
			t.Errorf("rating %d: %d bytes in the window for %d first copies of %d bytes (%d in messages)", i, row.Bytes, first, r.MsgSize, row.MsgBytes)
		}
	}
	if r.BadFrames != 0 || r.Rejected != 0 {
		t.Errorf("%d undecodable frames, %d rejected ratings", r.BadFrames, r.Rejected)
	}
	if want := int64((cfg.Warmup + cfg.Ratings) * (cfg.Nodes - 1)); r.Accepted != want {
		t.Errorf("validators accepted %d ratings, want %d", r.Accepted, want)
	}
	var out bytes.Buffer
	Print(&out, r, true)
	if !strings.Contains(out.String(), "| time until 99 % of the other 19 nodes hold it |") {
		t.Errorf("report lacks the 99 %% row:\n%s", out.String())
	}
}

func TestRegularGraph(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct{ n, d int }{{20, 4}, {300, 8}, {31, 6}} {
		edges, err := regularGraph(rng, c.n, c.d)
		if err != nil {
			t.Fatal(err)
		}
		deg := make([]int, c.n)
		seen := map[[2]int]bool{}
		for _, e := range edges {
			a, b := min(e[0], e[1]), max(e[0], e[1])
			if a == b || seen[[2]int{a, b}] {
				t.Fatalf("n=%d d=%d: loop or parallel edge %v", c.n, c.d, e)
			}
			seen[[2]int{a, b}] = true
			deg[a]++
			deg[b]++
		}
		for v, d := range deg {
			if d != c.d {
				t.Fatalf("n=%d: node %d has degree %d, want %d", c.n, v, d, c.d)
			}
		}
		if !connected(c.n, edges) {
			t.Fatalf("n=%d d=%d: not connected", c.n, c.d)
		}
	}
	if connected(4, [][2]int{{0, 1}, {2, 3}}) {
		t.Fatal("two components called connected")
	}
}

// TestFrameParser: RPCs split at every byte are decoded, copies and
// duplicates counted per node, IHAVE entries attributed by message ID.
func TestFrameParser(t *testing.T) {
	provKey, _, _ := crypto.GenerateEd25519Key(nil)
	consKey, _, _ := crypto.GenerateEd25519Key(nil)
	prov, _ := peer.IDFromPrivateKey(provKey)
	cons, _ := peer.IDFromPrivateKey(consKey)
	rc, err := signed.SealReceipt(provKey, signed.Receipt{Session: "s", ResourceID: "r", Provider: prov, Consumer: cons, Issued: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := signed.SealRating(consKey, rc, 1, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	o := newObserver(3)
	e := o.register(rec, 0, 0, false)
	topic := reputation.Topic
	msg := &pb.Message{From: []byte(cons), Seqno: []byte{0, 0, 0, 1}, Data: rec.Envelope, Topic: &topic}
	id := string(msg.From) + string(msg.Seqno)
	var wire []byte
	for _, rpc := range []*pb.RPC{
		{Publish: []*pb.Message{msg}},
		{Publish: []*pb.Message{msg}},
		{Control: &pb.ControlMessage{Ihave: []*pb.ControlIHave{{TopicID: &topic, MessageIDs: []string{id, "unknown"}}}}},
	} {
		b, err := proto.Marshal(rpc)
		if err != nil {
			t.Fatal(err)
		}
		wire = binary.AppendUvarint(wire, uint64(len(b)))
		wire = append(wire, b...)
	}
	for node := range 3 { // node 0 published the rating
		s := &inStream{h: &observedHost{obs: o, node: o.nodes[node]}}
		for i := range wire {
			s.feed(wire[i : i+1])
		}
		if len(s.buf) != 0 {
			t.Fatalf("node %d: %d bytes left unparsed", node, len(s.buf))
		}
	}
	if got := e.copies.Load(); got != 6 {
		t.Errorf("copies %d, want 6", got)
	}
	if got := e.dups.Load(); got != 4 { // publisher: 2, others: 1 each
		t.Errorf("duplicates %d, want 4", got)
	}
	if got, all := e.ihave.Load(), o.ihave.Load(); got != 3 || all != 6 {
		t.Errorf("IHAVE entries %d of %d, want 3 of 6", got, all)
	}
	if o.badFrame.Load() != 0 || o.rpcs.Load() != 9 {
		t.Errorf("%d bad frames, %d RPCs", o.badFrame.Load(), o.rpcs.Load())
	}
}
