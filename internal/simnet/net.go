package simnet

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pullnet/pullnet/node"
)

// Kind is what runs on each peer.
type Kind int

const (
	// Pullnet peers run a real node.Node.
	Pullnet Kind = iota
	// Baseline peers run plain go-libp2p-kad-dht with pullnet's DHT
	// options and nothing else: the network kubo would make.
	Baseline
)

func (k Kind) String() string { return [...]string{"pullnet", "baseline"}[k] }

// Fill is how routing tables get their peers.
type Fill int

const (
	// FillGlobal puts, in each peer's routing table, the k closest peers
	// of each bucket, computed centrally from every live peer.
	FillGlobal Fill = iota
	// FillBootstrap starts peers with a few earlier peers as bootstrap
	// peers (the node's own bootstrap: dial, then a DHT refresh) and then
	// runs one more refresh round on every peer, as the periodic refresh
	// would.
	FillBootstrap
)

func (f Fill) String() string { return [...]string{"global", "bootstrap"}[f] }

// Options shape a Net.
type Options struct {
	N    int
	Seed int64
	Kind Kind
	// Latency is the one-way delay distribution of links.
	Latency Latency
	// DialRTTs is what setting up a connection costs, in round trips of
	// the link (TCP+TLS is about 2, QUIC 1). Zero: free, as on bare mocknet.
	DialRTTs float64
	// DeadDial is how long a dial to a departed peer takes to fail.
	DeadDial time.Duration
	Fill     Fill
	// Bootstraps is how many earlier peers each peer bootstraps from
	// under FillBootstrap. Zero means 3.
	Bootstraps int
	// ConnLow, ConnHigh and ConnGrace configure a real go-libp2p
	// connection manager on every host (pulld uses 100, 400 and a
	// minute). ConnHigh zero means none: connections are never trimmed.
	ConnLow, ConnHigh int
	ConnGrace         time.Duration
	// KeepProtections lets connection-manager protections stand (kad-dht
	// protects its two widest buckets' peers: some 40 connections per
	// peer that are never trimmed). False turns them into high-valued
	// tags, so ConnHigh bounds connections.
	KeepProtections bool
	// LocalTopics answers DHT requests for gossip topics' rendezvous keys
	// (pubsub's routing discovery of the announce and ratings topics)
	// locally, with an empty answer after a round trip, instead of sending
	// them; they are still counted.
	LocalTopics bool
	// Parallel caps concurrent start-ups and refreshes. Zero means 4×CPUs.
	Parallel int
	// Capacity is the number of peer slots, churned-in peers included.
	// Zero means 2N.
	Capacity int
	// NodeConfig is the template for Pullnet peers' node.Config; Host, Key,
	// Bootstrap and DHTOptions are set by the net.
	NodeConfig node.Config
	// DHTOptions are extra kad-dht options, after the net's own.
	DHTOptions []dht.Option
	Logger     *slog.Logger
}

// Peer is one simulated participant.
type Peer struct {
	Slot int
	ID   peer.ID
	Key  crypto.PrivKey
	Addr ma.Multiaddr
	Host *Host
	// Node is the pullnet node (Pullnet nets); DHT is its DHT, or the
	// baseline's.
	Node *node.Node
	DHT  *dht.IpfsDHT
	// C counts the peer's traffic.
	C Counters

	kbID    kb.ID
	dead    atomic.Bool // not (yet, or any more) in the network
	stopped atomic.Bool
}

// Alive reports whether the peer is still in the network.
func (p *Peer) Alive() bool { return !p.dead.Load() }

// Net is a running simulated network.
type Net struct {
	opts Options
	mn   mocknet.Mocknet
	log  *slog.Logger
	// Keys classifies DHT keys and tracks per-peer key load.
	Keys *Keys

	mu    sync.RWMutex
	peers []*Peer // by slot
	byID  map[peer.ID]*Peer
	rng   *rand.Rand // key generation, under mu

	linkMu sync.Mutex
	links  map[uint64]struct{}

	flightMu sync.Mutex
	flights  map[uint64]chan struct{}

	// StartTime is how long New took; RefreshTime the bootstrap refresh
	// round within it (FillBootstrap).
	StartTime, FillTime time.Duration
}

// New starts a net of opts.N peers and fills their routing tables.
func New(ctx context.Context, opts Options) (*Net, error) {
	if opts.Parallel <= 0 {
		opts.Parallel = 4 * runtime.GOMAXPROCS(0)
	}
	if opts.Capacity < opts.N {
		opts.Capacity = 2 * opts.N
	}
	if opts.Bootstraps <= 0 {
		opts.Bootstraps = 3
	}
	if opts.DeadDial <= 0 {
		opts.DeadDial = time.Second
	}
	n := &Net{opts: opts, mn: mocknet.New(), log: opts.Logger, Keys: &Keys{slots: opts.Capacity},
		byID: map[peer.ID]*Peer{}, links: map[uint64]struct{}{}, flights: map[uint64]chan struct{}{},
		rng: rand.New(rand.NewPCG(uint64(opts.Seed), 0x5eed))}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	peers := make([]*Peer, opts.N)
	for i := range peers {
		p, err := n.newPeer()
		if err != nil {
			n.Close()
			return nil, err
		}
		peers[i] = p
	}
	err := n.parallel(ctx, len(peers), func(i int) error {
		var boot []peer.AddrInfo
		if opts.Fill == FillBootstrap && i > 0 {
			r := rand.New(rand.NewPCG(uint64(opts.Seed), uint64(i)))
			for _, j := range r.Perm(i)[:min(i, opts.Bootstraps)] {
				boot = append(boot, peer.AddrInfo{ID: peers[j].ID, Addrs: []ma.Multiaddr{peers[j].Addr}})
			}
		}
		return n.start(ctx, peers[i], boot)
	})
	if err != nil {
		n.Close()
		return nil, err
	}
	fill := time.Now()
	switch opts.Fill {
	case FillGlobal:
		n.FillRoutingTables(n.Alive())
	case FillBootstrap:
		// One refresh round, as the periodic refresh would do once every
		// peer has joined.
		err = n.parallel(ctx, len(peers), func(i int) error {
			select {
			case err := <-peers[i].DHT.RefreshRoutingTable():
				if err != nil {
					n.log.Debug("refresh", "peer", i, "err", err)
				}
			case <-ctx.Done():
				return ctx.Err()
			}
			return nil
		})
	}
	n.FillTime = time.Since(fill)
	n.StartTime = time.Since(start)
	if err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// Options are the net's options, defaults filled in.
func (n *Net) Options() Options { return n.opts }

// newPeer makes a peer's identity and mocknet host, in slot order.
func (n *Net) newPeer() (*Peer, error) {
	n.mu.Lock()
	slot := len(n.peers)
	if slot >= n.opts.Capacity {
		n.mu.Unlock()
		return nil, fmt.Errorf("simnet: all %d peer slots used", n.opts.Capacity)
	}
	key, _, err := crypto.GenerateEd25519Key(chachaReader{n.rng})
	n.mu.Unlock()
	if err != nil {
		return nil, err
	}
	p := &Peer{Slot: slot, Key: key, Addr: Addr(slot)}
	p.dead.Store(true) // until its node runs
	if p.ID, err = peer.IDFromPrivateKey(key); err != nil {
		return nil, err
	}
	p.kbID = kb.ConvertPeerID(p.ID)
	inner, err := n.mn.AddPeer(key, p.Addr)
	if err != nil {
		return nil, fmt.Errorf("mocknet peer %d: %w", slot, err)
	}
	if p.Host, err = newHost(n, p, inner); err != nil {
		return nil, err
	}
	n.mu.Lock()
	n.peers = append(n.peers, p)
	n.byID[p.ID] = p
	n.mu.Unlock()
	return p, nil
}

type chachaReader struct{ r *rand.Rand }

func (c chachaReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(c.r.Uint32())
	}
	return len(b), nil
}

// dhtOptions are the kad-dht options every peer runs with, after pullnet's.
func (n *Net) dhtOptions(p *Peer, capture func(any, peer.ID) bool) []dht.Option {
	opts := []dht.Option{
		dht.DisableAutoRefresh(),
		dht.WithCustomMessageSender(n.senderFor(p)),
		dht.OnRequestHook(func(_ context.Context, _ network.Stream, req *pb.Message) {
			if t := int(req.GetType()); t >= 0 && t < NumMsgTypes {
				p.C.RPCIn[t].Add(1)
			}
			n.Keys.onRequest(p.Slot, req)
		}),
	}
	if capture != nil {
		opts = append(opts, dht.RoutingTableFilter(capture))
	}
	return append(opts, n.opts.DHTOptions...)
}

// DHTProtocol is the DHT protocol pullnet nodes (and the baseline) speak.
const DHTProtocol = protocol.ID(node.DHTProtocolPrefix + "/kad/1.0.0")

// start runs p's node (or baseline DHT).
func (n *Net) start(ctx context.Context, p *Peer, boot []peer.AddrInfo) error {
	if n.opts.Kind == Baseline {
		opts := append([]dht.Option{dht.ProtocolPrefix(node.DHTProtocolPrefix), dht.Mode(dht.ModeServer),
			dht.BootstrapPeers(boot...)}, n.dhtOptions(p, nil)...)
		d, err := dht.New(p.Host, opts...)
		if err != nil {
			return fmt.Errorf("baseline dht %d: %w", p.Slot, err)
		}
		p.DHT = d
		p.dead.Store(false)
		if len(boot) > 0 {
			for _, ai := range boot {
				if err := p.Host.Connect(ctx, ai); err != nil {
					n.log.Debug("bootstrap dial", "peer", p.Slot, "err", err)
				}
			}
			_ = d.Bootstrap(ctx)
		}
		return nil
	}
	// The node keeps its DHT to itself. kad-dht hands the DHT to its
	// routing-table filter, so the harness installs one that passes every
	// peer and, asked about the node itself, captures the DHT.
	got := make(chan *dht.IpfsDHT, 1)
	capture := func(d any, id peer.ID) bool {
		if id != p.ID {
			return true
		}
		if dd, ok := d.(*dht.IpfsDHT); ok {
			select {
			case got <- dd:
			default:
			}
		}
		return false
	}
	cfg := n.opts.NodeConfig
	cfg.Host, cfg.Key, cfg.Bootstrap = p.Host, p.Key, boot
	cfg.DHTOptions = n.dhtOptions(p, capture)
	if cfg.Logger == nil {
		cfg.Logger = n.log.With("peer", p.Slot)
	}
	nd, err := node.New(ctx, cfg)
	if err != nil {
		return fmt.Errorf("node %d: %w", p.Slot, err)
	}
	p.Node = nd
	ps := p.Host.Peerstore()
	_ = ps.AddProtocols(p.ID, DHTProtocol)
	em, err := p.Host.EventBus().Emitter(new(event.EvtPeerProtocolsUpdated))
	if err != nil {
		return err
	}
	err = em.Emit(event.EvtPeerProtocolsUpdated{Peer: p.ID, Added: []protocol.ID{DHTProtocol}})
	_ = em.Close()
	if err != nil {
		return err
	}
	select {
	case p.DHT = <-got:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("node %d: DHT not captured", p.Slot)
	case <-ctx.Done():
		return ctx.Err()
	}
	_ = ps.RemoveProtocols(p.ID, DHTProtocol)
	p.dead.Store(false)
	return nil
}

// parallel runs f(0) … f(count-1), at most opts.Parallel at a time, and
// returns the first error.
func (n *Net) parallel(ctx context.Context, count int, f func(i int) error) error {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	for range min(n.opts.Parallel, count) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= count || ctx.Err() != nil {
					return
				}
				if err := f(i); err != nil {
					errMu.Lock()
					if first == nil {
						first = err
					}
					errMu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// FillRoutingTables puts in each of peers' routing tables, from the global
// view of the live peers, the k (bucket size) closest peers of each bucket,
// with their addresses in its peerstore.
func (n *Net) FillRoutingTables(peers []*Peer) {
	all := n.Alive()
	const k = 20
	_ = n.parallel(context.Background(), len(peers), func(i int) error {
		p := peers[i]
		type cand struct {
			q    *Peer
			dist [4]uint64 // XOR distance, most significant word first
		}
		var buckets [257][]cand
		for _, q := range all {
			if q == p {
				continue
			}
			var d [4]uint64
			cpl := 0
			for w := range 4 {
				for b := range 8 {
					d[w] = d[w]<<8 | uint64(p.kbID[w*8+b]^q.kbID[w*8+b])
				}
			}
			for w := range 4 {
				if d[w] != 0 {
					cpl += bits.LeadingZeros64(d[w])
					break
				}
				cpl += 64
			}
			buckets[cpl] = append(buckets[cpl], cand{q, d})
		}
		rt := p.DHT.RoutingTable()
		ps := p.Host.Peerstore()
		for cpl := range buckets {
			b := buckets[cpl]
			if len(b) > k {
				slices.SortFunc(b, func(x, y cand) int {
					for w := range 4 {
						if c := cmp.Compare(x.dist[w], y.dist[w]); c != 0 {
							return c
						}
					}
					return 0
				})
				b = b[:k]
			}
			for _, c := range b {
				ps.AddAddrs(c.q.ID, []ma.Multiaddr{c.q.Addr}, peerstore.PermanentAddrTTL)
				_, _ = rt.TryAddPeer(c.q.ID, true, true)
			}
		}
		return nil
	})
}

// Peers lists every peer ever started, by slot.
func (n *Net) Peers() []*Peer {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return slices.Clone(n.peers)
}

// Alive lists the live peers, by slot.
func (n *Net) Alive() []*Peer {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make([]*Peer, 0, len(n.peers))
	for _, p := range n.peers {
		if p.Alive() {
			out = append(out, p)
		}
	}
	return out
}

// PeerByID is the peer with id, or nil.
func (n *Net) PeerByID(id peer.ID) *Peer {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.byID[id]
}

func (n *Net) latency(a, b *Peer) time.Duration {
	return n.opts.Latency.Between(n.opts.Seed, a.Slot, b.Slot)
}

// Latency is the one-way delay between a and b.
func (n *Net) Latency(a, b *Peer) time.Duration { return n.latency(a, b) }

// Stop takes p out of the network: its node and host close, and dials to it
// fail after DeadDial.
func (n *Net) Stop(p *Peer) {
	p.dead.Store(true)
	if p.stopped.Swap(true) {
		return
	}
	if p.Node != nil {
		_ = p.Node.Close()
	} else if p.DHT != nil {
		_ = p.DHT.Close()
	}
	_ = p.Host.Close()
}

// Join starts a new peer and returns it once its node runs. Under
// FillBootstrap it bootstraps from a few random live peers, as a newcomer
// would (the bootstrap goes on in the background); under FillGlobal its
// routing table is filled from the global view, and other peers learn of
// it only as it contacts them.
func (n *Net) Join(ctx context.Context, r *rand.Rand) (*Peer, error) {
	alive := n.Alive()
	p, err := n.newPeer()
	if err != nil {
		return nil, err
	}
	var boot []peer.AddrInfo
	if n.opts.Fill == FillBootstrap {
		for _, j := range r.Perm(len(alive))[:min(len(alive), n.opts.Bootstraps)] {
			boot = append(boot, peer.AddrInfo{ID: alive[j].ID, Addrs: []ma.Multiaddr{alive[j].Addr}})
		}
	}
	if err := n.start(ctx, p, boot); err != nil {
		p.dead.Store(true)
		return nil, err
	}
	if n.opts.Fill == FillGlobal {
		n.FillRoutingTables([]*Peer{p})
	}
	return p, nil
}

// Close stops every peer and the mocknet.
func (n *Net) Close() {
	peers := n.Peers()
	_ = n.parallel(context.Background(), len(peers), func(i int) error {
		if p := peers[i]; p.Host != nil && (p.Node != nil || p.DHT != nil) {
			n.Stop(p)
		} else if p.Host != nil {
			_ = p.Host.Close()
		}
		return nil
	})
	_ = n.mn.Close()
}

// Totals sums the counters of every peer.
func (n *Net) Totals() Snapshot {
	var s Snapshot
	for _, p := range n.Peers() {
		s.Add(p.C.Snapshot())
	}
	return s
}

// Memory is the process's memory after a full collection: the live heap
// (objects reachable), the heap spans in use (live objects plus
// fragmentation), goroutine stacks, and everything obtained from the OS.
type Memory struct {
	LiveHeap, HeapInuse, Stacks, Sys uint64
	Goroutines                       int
}

// MeasureMemory collects garbage and reads the memory statistics.
func MeasureMemory() Memory {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	m := Memory{HeapInuse: ms.HeapInuse, Stacks: ms.StackInuse, Sys: ms.Sys, Goroutines: runtime.NumGoroutine()}
	if s[0].Value.Kind() == metrics.KindUint64 {
		m.LiveHeap = s[0].Value.Uint64()
	}
	return m
}
