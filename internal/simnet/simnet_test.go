package simnet

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/pullnet/pullnet/node"
	"github.com/pullnet/pullnet/resource"
)

func TestAddrSpreadsOverSlash16s(t *testing.T) {
	seen := map[string]bool{}
	blocks := map[string]bool{}
	const n = 5000
	for i := range n {
		a := Addr(i)
		if !manet.IsPublicAddr(a) {
			t.Fatalf("Addr(%d) = %s is not public", i, a)
		}
		if seen[a.String()] {
			t.Fatalf("Addr(%d) = %s repeats", i, a)
		}
		seen[a.String()] = true
		ip, err := manet.ToIP(a)
		if err != nil {
			t.Fatal(err)
		}
		blocks[fmt.Sprintf("%d.%d", ip[len(ip)-4], ip[len(ip)-3])] = true
	}
	if len(blocks) != n {
		t.Errorf("%d peers in %d /16 blocks, want one block each", n, len(blocks))
	}
	// Past the last block, peers share blocks but not addresses.
	a, b := Addr(3), Addr(3+Blocks16)
	if a.Equal(b) {
		t.Errorf("Addr(3) and Addr(3+Blocks16) are both %s", a)
	}
}

func TestLatencyIsSeededSymmetricAndInRange(t *testing.T) {
	l, err := ParseLatency("10ms-150ms")
	if err != nil {
		t.Fatal(err)
	}
	var sum time.Duration
	const n = 2000
	differs := false
	for i := range n {
		d := l.Between(7, i, i+1)
		if d < l.Min || d > l.Max {
			t.Fatalf("Between(7, %d, %d) = %v, outside %v", i, i+1, d, l)
		}
		if d != l.Between(7, i+1, i) || d != l.Between(7, i, i+1) {
			t.Fatalf("Between(7, %d, %d) is not symmetric and stable", i, i+1)
		}
		if d != l.Between(8, i, i+1) {
			differs = true
		}
		sum += d
	}
	if !differs {
		t.Error("another seed gives the same latencies")
	}
	if mean := sum / n; mean < 70*time.Millisecond || mean > 90*time.Millisecond {
		t.Errorf("mean latency %v, want about 80ms", mean)
	}
	if f, err := ParseLatency("40ms"); err != nil || f.Between(1, 2, 3) != 40*time.Millisecond || f.RTT() != 80*time.Millisecond {
		t.Errorf("fixed latency: %v %v", f, err)
	}
	for _, bad := range []string{"", "fast", "50ms-10ms", "-5ms"} {
		if _, err := ParseLatency(bad); err == nil {
			t.Errorf("ParseLatency(%q) did not fail", bad)
		}
	}
}

func newTestNet(t *testing.T, o Options) *Net {
	t.Helper()
	n, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

func TestLinksAreMadeOnFirstUseOncePerPair(t *testing.T) {
	if raceEnabled {
		t.Skip("two dials race into two connections under the race detector's slowdown; CI runs this package without -race too (README)")
	}
	n := newTestNet(t, Options{N: 8, Seed: 1, Kind: Baseline, Latency: Latency{Min: time.Millisecond, Max: 5 * time.Millisecond}, DialRTTs: 1})
	if got := n.LinksMade(); got != 0 {
		t.Fatalf("%d links before any dial, want 0", got)
	}
	ps := n.Alive()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, b := ps[0], ps[1]
			if i%2 == 1 {
				a, b = b, a
			}
			if err := a.Host.Connect(context.Background(), peer.AddrInfo{ID: b.ID}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := n.LinksMade(); got != 1 {
		t.Errorf("%d links after 20 concurrent dials between one pair, want 1", got)
	}
	if c := len(ps[0].Host.Network().ConnsToPeer(ps[1].ID)); c != 1 {
		t.Errorf("%d connections between the pair, want 1", c)
	}
	if _, err := ps[2].Host.Network().DialPeer(context.Background(), ps[3].ID); err != nil {
		t.Fatal(err)
	}
	if got := n.LinksMade(); got != 2 {
		t.Errorf("%d links after a dial through Network(), want 2", got)
	}
}

func TestStreamsKeepLatencyAndSetUpCostsRoundTrips(t *testing.T) {
	const lat = 30 * time.Millisecond
	n := newTestNet(t, Options{N: 2, Seed: 1, Kind: Baseline, Latency: Latency{Min: lat, Max: lat}, DialRTTs: 1, DeadDial: 50 * time.Millisecond})
	a, b := n.Alive()[0], n.Alive()[1]
	arrived := make(chan time.Duration, 1)
	var sent time.Time
	b.Host.SetStreamHandler("/test/1", func(s network.Stream) {
		_, _ = io.ReadAll(s)
		arrived <- time.Since(sent)
		_ = s.Close()
	})
	start := time.Now()
	if err := a.Host.Connect(context.Background(), peer.AddrInfo{ID: b.ID}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 2*lat {
		t.Errorf("connection set up in %v, want at least one round trip (%v)", d, 2*lat)
	}
	s, err := a.Host.NewStream(context.Background(), b.ID, "/test/1")
	if err != nil {
		t.Fatal(err)
	}
	sent = time.Now()
	if _, err := s.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	_ = s.CloseWrite() // a bare mocknet stream would deliver at once here
	if d := <-arrived; d < lat {
		t.Errorf("a small write closed at once arrived after %v, want at least the link latency %v", d, lat)
	}
	if a.C.BytesOut[ProtoOther].Load() == 0 {
		t.Error("bytes written were not counted")
	}
	// A departed peer fails a dial, after DeadDial.
	n.Stop(b)
	start = time.Now()
	if err := a.Host.Connect(context.Background(), peer.AddrInfo{ID: b.ID}); err != ErrOffline {
		t.Errorf("dial to a departed peer: %v, want ErrOffline", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("dial to a departed peer failed after %v, want at least DeadDial", d)
	}
}

func TestRoutingTablesFromTheGlobalView(t *testing.T) {
	n := newTestNet(t, Options{N: 60, Seed: 3, Kind: Baseline, Latency: Latency{Min: time.Millisecond, Max: time.Millisecond}})
	for _, p := range n.Alive() {
		if s := p.DHT.RoutingTable().Size(); s < 20 {
			t.Errorf("peer %d: routing table holds %d peers, want at least a bucket's worth", p.Slot, s)
		}
	}
}

func TestFindOnATwentyNodeNet(t *testing.T) {
	ctx := context.Background()
	n := newTestNet(t, Options{N: 20, Seed: 1, Latency: Latency{Min: 2 * time.Millisecond, Max: 10 * time.Millisecond}, DialRTTs: 1,
		LocalTopics: true, NodeConfig: node.Config{NoAnnounce: true}})
	ps := n.Alive()
	r, err := ps[3].Node.Advertise(ctx, resource.Resource{Kind: "dataset", Name: "x", Tags: []string{"alpha"}})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := ps[3].Node.WaitAnnounced(wctx, r.ID); err != nil {
		t.Fatal(err)
	}
	op := NewOp()
	found := false
	for res, err := range ps[15].Node.Find(WithOp(wctx, op), "tag:alpha", node.FindOptions{Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		found = res.Resource.ID == r.ID && res.Provider == ps[3].ID
	}
	if !found {
		t.Fatal("the find did not return the advertised resource")
	}
	if op.Asks.Load() == 0 {
		t.Error("the find's ask of the provider was not counted")
	}
	if n.Totals().AllRPCsIn() == 0 {
		t.Error("no DHT requests counted")
	}
}
