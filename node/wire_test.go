package node_test

import (
	"context"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/pullnet/pullnet/internal/testswarm"
	"github.com/pullnet/pullnet/protocol/connect"
	"github.com/pullnet/pullnet/protocol/find"
)

// TestMalformedWireInput sends garbage, oversized and truncated messages to
// the find and connect handlers: each such stream is reset and counted, and
// the node goes on serving an honest peer.
func TestMalformedWireInput(t *testing.T) {
	s := testswarm.New(t, 3, testswarm.Options{Topology: testswarm.FullMesh})
	victim, attacker, honest := s.Nodes[0], s.Nodes[1], s.Nodes[2]
	ctx := context.Background()
	r, err := victim.Advertise(ctx, gpuBox())
	if err != nil {
		t.Fatal(err)
	}

	oversized := binary.AppendUvarint(nil, 1<<30) // a length prefix far over any cap
	garbled := append(binary.AppendUvarint(nil, 5), 0xff, 0xff, 0xff, 0xff, 0xff)
	truncated := binary.AppendUvarint(nil, 100) // then the stream ends
	cases := []struct {
		proto protocol.ID
		body  []byte
	}{
		{find.ID, oversized}, {find.ID, garbled}, {find.ID, truncated},
		{connect.ID, oversized}, {connect.ID, garbled}, {connect.ID, truncated},
	}
	for _, c := range cases {
		str, err := attacker.Host().NewStream(ctx, victim.ID(), c.proto)
		if err != nil {
			t.Fatal(err)
		}
		_ = str.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := str.Write(c.body); err != nil {
			t.Fatal(err)
		}
		_ = str.CloseWrite()
		// The handler answers nothing: it resets the stream.
		if b, err := io.ReadAll(str); err == nil || len(b) != 0 {
			t.Errorf("%s %x: got %q, %v; want a reset", c.proto, c.body, b, err)
		}
	}
	testswarm.WaitFor(t, 5*time.Second, "the malformed requests to be counted", func() bool {
		return victim.Stats().MalformedRequests == int64(len(cases))
	})

	res := waitFound(t, honest, "kind:compute tag:gpu", r.ID)
	if res.Provider != victim.ID() {
		t.Fatalf("honest find: %+v", res)
	}
	if g, err := honest.Connect(ctx, r.ID, ""); err != nil || !g.Granted {
		t.Fatalf("honest connect after the attack: %+v %v", g, err)
	}
}
