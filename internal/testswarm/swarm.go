// Package testswarm runs many pullnet nodes in one process on go-libp2p's
// mocknet, for tests and benchmarks that need a network but not real
// sockets. Nodes get addresses spread over many IPv4 /16 blocks, as on the
// internet, and are torn down with t.Cleanup.
package testswarm

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pullnet/pullnet/node"
)

// Options shape a swarm.
type Options struct {
	// Latency is the one-way delay of every link. Zero means none.
	Latency time.Duration
	// Config is the template for each node's config; Host and Key are set
	// by the swarm. The zero value is fine.
	Config node.Config
	// Topology connects the nodes once they run. Nil means Chain.
	Topology func(s *Swarm) error
}

// Swarm is a set of nodes on one mocknet.
type Swarm struct {
	Net   mocknet.Mocknet
	Nodes []*node.Node
}

// New starts n nodes. It fails the test if any cannot start.
func New(t testing.TB, n int, opt Options) *Swarm {
	t.Helper()
	mn := mocknet.New()
	mn.SetLinkDefaults(mocknet.LinkOptions{Latency: opt.Latency})
	s := &Swarm{Net: mn}
	t.Cleanup(func() {
		for _, nd := range s.Nodes {
			_ = nd.Close()
		}
		_ = mn.Close()
	})
	for i := range n {
		key, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		h, err := mn.AddPeer(key, Addr(i))
		if err != nil {
			t.Fatalf("mocknet peer %d: %v", i, err)
		}
		cfg := opt.Config
		cfg.Host = h
		cfg.Key = key
		if cfg.Logger == nil && os.Getenv("PULLNET_TEST_LOG") != "" {
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", i)
		}
		nd, err := node.New(context.Background(), cfg)
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		s.Nodes = append(s.Nodes, nd)
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	topo := opt.Topology
	if topo == nil {
		topo = Chain
	}
	if err := topo(s); err != nil {
		t.Fatalf("connect swarm: %v", err)
	}
	return s
}

// Addr gives node i an address in its own /16, so routing-table diversity
// filters see an internet-like spread rather than one block.
func Addr(i int) ma.Multiaddr {
	return ma.StringCast(fmt.Sprintf("/ip4/%d.%d.1.1/tcp/4001", 11+i/250, i%250))
}

// Chain connects node i to node i+1 only, so a node at one end starts out
// knowing nothing of the other end: the DHT has to find the way.
func Chain(s *Swarm) error {
	for i := 1; i < len(s.Nodes); i++ {
		if _, err := s.Net.ConnectPeers(s.Nodes[i-1].ID(), s.Nodes[i].ID()); err != nil {
			return err
		}
	}
	return nil
}

// FullMesh connects every pair of nodes.
func FullMesh(s *Swarm) error { return s.Net.ConnectAllButSelf() }

// WaitFor polls cond every few milliseconds until it holds or the timeout
// passes, and fails the test in that case with what.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}
