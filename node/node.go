package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/namespace"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	tls "github.com/libp2p/go-libp2p/p2p/security/tls"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pullnet/pullnet/internal/catalog"
	"github.com/pullnet/pullnet/internal/datadir"
	"github.com/pullnet/pullnet/internal/demand"
	"github.com/pullnet/pullnet/internal/finder"
	"github.com/pullnet/pullnet/internal/forward"
	"github.com/pullnet/pullnet/internal/grants"
	"github.com/pullnet/pullnet/internal/store"
	"github.com/pullnet/pullnet/protocol/announce"
	"github.com/pullnet/pullnet/protocol/connect"
	"github.com/pullnet/pullnet/protocol/find"
	"github.com/pullnet/pullnet/protocol/signed"
	"github.com/pullnet/pullnet/protocol/tunnel"
)

// DHTProtocolPrefix makes pullnet's DHT its own: its peers speak
// /pullnet/kad/1.0.0 and never join the IPFS DHT.
const DHTProtocolPrefix = "/pullnet"

// mdnsService is the mDNS service name pullnet peers announce on the LAN.
const mdnsService = "pullnet"

// Node is a pullnet participant. Its methods are safe for concurrent use.
type Node struct {
	cfg  Config
	log  *slog.Logger
	key  crypto.PrivKey
	host host.Host
	dht  *dht.IpfsDHT

	store    ds.Batching
	catalog  *catalog.Catalog
	grants   *grants.Manager
	finder   *finder.Finder
	demand   *demand.Recorder // local demand counts
	announce *announce.Service
	findSvc  *find.Service
	connSvc  *connect.Service
	tunnels  *tunnel.Service
	forwards *forward.Manager
	held     store.Table[HeldSession] // sessions this node was granted
	prov     *provider
	wants    *wantBook       // own wants and the wants service (wants.go)
	rep      *reputationPart // ratings, trust, their gossip and sync (reputation.go)
	mdns     mdns.Service

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closers []func() error // run in reverse order by Close

	closeOnce sync.Once
	closeErr  error

	started      time.Time
	reachability atomic.Int32 // a network.Reachability

	mu         sync.Mutex
	providers  map[string]peer.ID          // resource ID → owner, learnt from finds
	advertised map[string]time.Time        // resource ID → last Advertise in this run
	dials      map[string]*tunnel.Counters // held session → traffic through Dial
	relayOnly  map[peer.ID]time.Time       // peers hole punching failed to reach, until when
	clockAhead map[peer.ID]time.Duration   // peer → its clock's lead, a lower bound (peerclock.go)
}

// New starts a node. The node runs until Close; ctx only bounds start-up.
func New(ctx context.Context, cfg Config) (n *Node, err error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.ApprovalTimeout <= 0 {
		cfg.ApprovalTimeout = DefaultApprovalTimeout
	}
	if cfg.ReprovideInterval <= 0 {
		cfg.ReprovideInterval = DefaultReprovideInterval
	}
	n = &Node{cfg: cfg, log: log, started: time.Now(), providers: map[string]peer.ID{}, advertised: map[string]time.Time{}, dials: map[string]*tunnel.Counters{}, relayOnly: map[peer.ID]time.Time{}}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			_ = n.Close()
		}
	}()

	if err := n.openIdentityAndStore(); err != nil {
		return nil, err
	}
	if err := n.startHost(); err != nil {
		return nil, err
	}
	if n.catalog, err = catalog.Open(ctx, n.store); err != nil {
		return nil, err
	}
	n.openDemand(ctx)
	gpol, err := cfg.Policy.toGrants()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	n.grants, err = grants.New(ctx, grants.Config{Key: n.key, Policy: gpol, Lookup: n.catalog.Get,
		Service: n.catalog.Service, Store: n.store, Trust: func(p peer.ID) float64 { return n.trustValue(p) },
		Logger: log.With("part", "grants")})
	if err != nil {
		return nil, err
	}
	n.held = store.Table[HeldSession]{DS: n.store, Prefix: ds.NewKey("/pullnet/sessions/held")}
	if err := n.startDHT(); err != nil {
		return nil, err
	}
	n.finder = finder.New(n.host, n.dht, n.catalog.Match, log.With("part", "finder"))
	if n.announce, err = announce.New(n.ctx, n.host, drouting.NewRoutingDiscovery(n.dht), log.With("part", "announce")); err != nil {
		return nil, err
	}
	if err := n.openReputation(ctx); err != nil { // before the connect service, whose policy reads trust
		return nil, err
	}
	n.findSvc = find.NewService(n.host, servedCatalog{n}, log.With("part", "find"))
	n.connSvc = connect.NewService(n.host, countingGrants{n}, cfg.ApprovalTimeout, log.With("part", "connect"))
	n.tunnels = tunnel.NewService(n.host, n.grants, log.With("part", "tunnel"))
	n.closers = append(n.closers, func() error { n.findSvc.Close(); n.connSvc.Close(); n.tunnels.Close(); return nil })
	n.forwards = forward.New(n.store, n.openTunnel, log.With("part", "forward"))
	if err := n.forwards.Restore(ctx); err != nil {
		return nil, err
	}
	n.closers = append(n.closers, func() error { n.forwards.Shutdown(); return nil })

	n.prov = newProvider(n.dht, n.host.ID(), n.providedTerms, cfg.ReprovideInterval, log.With("part", "provider"))
	if err := n.openWants(ctx); err != nil { // before the provider runs, to provide their terms
		return nil, err
	}
	n.goRun(n.prov.run)
	if err := n.startPeerClocks(); err != nil { // before bootstrap, to see the first peers
		return nil, fmt.Errorf("follow identify: %w", err)
	}
	n.goRun(n.bootstrapLoop)
	n.goRun(n.watchReachability)
	if cfg.MDNS {
		n.mdns = mdns.NewMdnsService(n.host, mdnsService, mdnsNotifee{n})
		if err := n.mdns.Start(); err != nil {
			return nil, fmt.Errorf("start mdns: %w", err)
		}
		n.closers = append(n.closers, n.mdns.Close)
	}
	log.Info("node started", "peer", n.host.ID(), "addrs", n.host.Addrs(), "resources", n.catalog.Len())
	return n, nil
}

func (n *Node) openIdentityAndStore() error {
	n.key = n.cfg.Key
	if n.cfg.DataDir != "" {
		d, err := datadir.Open(n.cfg.DataDir)
		if err != nil {
			return err
		}
		if n.key == nil {
			n.key = d.Key()
		}
	}
	if n.key == nil && n.cfg.Host != nil {
		n.key = n.cfg.Host.Peerstore().PrivKey(n.cfg.Host.ID())
		if n.key == nil {
			return fmt.Errorf("%w: Config.Host has no private key in its peerstore", ErrInvalid)
		}
	}
	if n.key == nil {
		k, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			return fmt.Errorf("generate identity: %w", err)
		}
		n.key = k
	}
	switch {
	case n.cfg.Datastore != nil:
		n.store = n.cfg.Datastore
	case n.cfg.DataDir != "":
		pds, err := store.OpenPebble(filepath.Join(n.cfg.DataDir, "store"))
		if err != nil {
			return err
		}
		n.store = pds
		n.closers = append(n.closers, pds.Close)
	default:
		n.store = dssync.MutexWrap(ds.NewMapDatastore())
	}
	return nil
}

func (n *Node) startHost() error {
	if n.cfg.Host != nil {
		if pid, _ := peer.IDFromPrivateKey(n.key); pid != n.cfg.Host.ID() {
			return fmt.Errorf("%w: Config.Key does not belong to Config.Host", ErrInvalid)
		}
		n.host = n.cfg.Host
		return nil
	}
	cm, err := connmgr.NewConnManager(100, 400, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return fmt.Errorf("connection manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(n.key),
		libp2p.UserAgent("pullnet/" + Version),
		libp2p.ConnectionManager(cm),
		// NAT traversal: AutoNAT tells the node whether it is reachable (and
		// answers others), AutoRelay reserves relay slots when it is not, and
		// DCUtR upgrades relayed connections to direct ones by hole punching.
		libp2p.EnableNATService(),
		// One known relay is enough to start with, and at once: a pullnet node
		// often knows just its bootstrap peers, and AutoRelay's defaults
		// (four candidates or a 3-minute wait) would leave it unreachable.
		libp2p.EnableAutoRelayWithPeerSource(n.relayCandidates, autorelay.WithMinCandidates(1), autorelay.WithBootDelay(0)),
		libp2p.EnableHolePunching(),
	}
	if n.cfg.Bandwidth != nil {
		opts = append(opts, libp2p.BandwidthReporter(n.cfg.Bandwidth))
	}
	if n.cfg.RelayService {
		// go-libp2p starts the relay service only once AutoNAT finds the node
		// public, which needs other public peers to dial back; a network's
		// first relay has none. A participant who offers to relay says the
		// node is reachable.
		opts = append(opts, libp2p.EnableRelayService(), libp2p.ForceReachabilityPublic())
	}
	// Dial TCP first. Measured with bench/tunnel on this project's machines,
	// a tunnel over TCP+TLS carries about twice the throughput of QUIC at a
	// third of the CPU per byte (see BENCHMARKS.md); QUIC stays a fallback
	// and keeps its part in hole punching.
	opts = append(opts, libp2p.SwarmOpts(swarm.WithDialRanker(tcpFirst)))
	switch n.cfg.Security {
	case "":
	case "tls":
		opts = append(opts, libp2p.Security(tls.ID, tls.New))
	case "noise":
		opts = append(opts, libp2p.Security(noise.ID, noise.New))
	default:
		return fmt.Errorf("%w: security %q: want tls or noise", ErrInvalid, n.cfg.Security)
	}
	if n.cfg.ListenAddrs != nil {
		opts = append(opts, libp2p.ListenAddrs(n.cfg.ListenAddrs...))
	} else {
		opts = append(opts, libp2p.ListenAddrStrings("/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return fmt.Errorf("start libp2p host: %w", err)
	}
	n.host = h
	n.closers = append(n.closers, h.Close)
	return nil
}

// tcpFirst ranks a peer's addresses for dialing: direct TCP at once, the
// rest (QUIC, relays) after a quarter second, by go-libp2p's own order.
func tcpFirst(addrs []ma.Multiaddr) []network.AddrDelay {
	ranked := swarm.DefaultDialRanker(addrs)
	hasTCP := false
	for _, a := range ranked {
		if hasProto(a.Addr, ma.P_TCP) && !isRelayed(a.Addr) {
			hasTCP = true
			break
		}
	}
	if !hasTCP {
		return ranked
	}
	for i, a := range ranked {
		if hasProto(a.Addr, ma.P_TCP) && !isRelayed(a.Addr) {
			ranked[i].Delay = 0
		} else {
			ranked[i].Delay += 250 * time.Millisecond
		}
	}
	return ranked
}

// relayCandidates offers AutoRelay the peers the node knows: its
// connections and its bootstrap peers. AutoRelay keeps those that speak
// the relay protocol.
func (n *Node) relayCandidates(ctx context.Context, num int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo, num)
	go func() {
		defer close(out)
		seen := map[peer.ID]bool{}
		send := func(ai peer.AddrInfo) bool {
			if seen[ai.ID] || len(seen) >= num {
				return len(seen) < num
			}
			seen[ai.ID] = true
			select {
			case out <- ai:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for _, ai := range n.cfg.Bootstrap {
			if !send(ai) {
				return
			}
		}
		if n.host == nil {
			return
		}
		for _, p := range n.host.Network().Peers() {
			if !send(peer.AddrInfo{ID: p, Addrs: n.host.Peerstore().Addrs(p)}) {
				return
			}
		}
	}()
	return out
}

// watchReachability follows AutoNAT's verdict on the node's reachability.
func (n *Node) watchReachability(ctx context.Context) {
	sub, err := n.host.EventBus().Subscribe(new(event.EvtLocalReachabilityChanged))
	if err != nil {
		n.log.Warn("cannot follow reachability", "err", err)
		return
	}
	defer sub.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			r := e.(event.EvtLocalReachabilityChanged).Reachability
			n.reachability.Store(int32(r))
			n.log.Info("reachability changed", "reachability", r.String())
		}
	}
}

// Reachability is "public", "private" or "unknown": whether peers can dial
// the node directly, as AutoNAT has found.
func (n *Node) Reachability() string {
	switch network.Reachability(n.reachability.Load()) {
	case network.ReachabilityPublic:
		return "public"
	case network.ReachabilityPrivate:
		return "private"
	}
	return "unknown"
}

// RelayAddrs are the node's addresses through circuit relays, which peers
// use to reach it when it is behind NAT.
func (n *Node) RelayAddrs() []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range n.Addrs() {
		if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
			out = append(out, a)
		}
	}
	return out
}

func (n *Node) startDHT() error {
	mode := dht.ModeServer // the network has no other servers
	switch n.cfg.DHTMode {
	case "", DHTServer:
	case DHTClient:
		mode = dht.ModeClient
	case DHTAuto:
		mode = dht.ModeAuto
	default:
		return fmt.Errorf("%w: dht mode %q: want server, client or auto", ErrInvalid, n.cfg.DHTMode)
	}
	d, err := dht.New(n.host, append([]dht.Option{
		dht.ProtocolPrefix(DHTProtocolPrefix),
		dht.Mode(mode),
		dht.Datastore(namespace.Wrap(n.store, ds.NewKey("/pullnet/dht"))),
		dht.BootstrapPeers(n.cfg.Bootstrap...),
	}, n.cfg.DHTOptions...)...)
	if err != nil {
		return fmt.Errorf("start dht: %w", err)
	}
	n.dht = d
	n.closers = append(n.closers, d.Close)
	return nil
}

// bootstrapLoop dials the bootstrap peers at start, and again whenever the
// node finds itself with no peers at all.
func (n *Node) bootstrapLoop(ctx context.Context) {
	if len(n.cfg.Bootstrap) == 0 {
		return
	}
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		if len(n.host.Network().Peers()) == 0 {
			n.dialBootstrap(ctx)
			if err := n.dht.Bootstrap(ctx); err != nil {
				n.log.Debug("dht bootstrap", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Node) dialBootstrap(ctx context.Context) {
	var wg sync.WaitGroup
	for _, ai := range n.cfg.Bootstrap {
		if ai.ID == n.host.ID() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := n.host.Connect(cctx, ai); err != nil {
				n.log.Warn("bootstrap peer unreachable", "peer", ai.ID, "err", err)
				return
			}
			n.log.Info("connected to bootstrap peer", "peer", ai.ID)
		}()
	}
	wg.Wait()
}

type mdnsNotifee struct{ n *Node }

func (m mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	if ai.ID == m.n.host.ID() {
		return
	}
	ctx, cancel := context.WithTimeout(m.n.ctx, 10*time.Second)
	defer cancel()
	if err := m.n.host.Connect(ctx, ai); err != nil {
		m.n.log.Debug("mdns peer unreachable", "peer", ai.ID, "err", err)
	}
}

// announceInBackground publishes rec on gossip without holding up the
// caller; Close waits for it.
func (n *Node) announceInBackground(rec signed.Record) {
	if n.cfg.NoAnnounce {
		return
	}
	n.goRun(func(ctx context.Context) { n.announce.Publish(ctx, rec) })
}

func (n *Node) goRun(f func(ctx context.Context)) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f(n.ctx)
	}()
}

// Close stops the node: its loops, services, DHT, and the host and store it
// made itself. It is safe to call more than once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.cancel()
		n.wg.Wait()
		var errs []error
		for i := len(n.closers) - 1; i >= 0; i-- {
			if err := n.closers[i](); err != nil {
				errs = append(errs, err)
			}
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// ID is the node's peer ID.
func (n *Node) ID() peer.ID { return n.host.ID() }

// Host is the node's libp2p host.
func (n *Node) Host() host.Host { return n.host }

// Addrs are the node's full multiaddrs, each ending in /p2p/<peer ID>, ready
// to give to another node as a bootstrap peer.
func (n *Node) Addrs() []ma.Multiaddr {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()})
	if err != nil {
		return nil
	}
	return addrs
}

// AddrInfo is the node's peer ID and addresses.
func (n *Node) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()}
}

// Peers lists the node's live connections, one entry per peer.
func (n *Node) Peers() []PeerInfo {
	seen := map[peer.ID]int{}
	var out []PeerInfo
	for _, c := range n.host.Network().Conns() {
		p := c.RemotePeer()
		if i, ok := seen[p]; ok {
			out[i].Addrs = append(out[i].Addrs, c.RemoteMultiaddr())
			continue
		}
		seen[p] = len(out)
		out = append(out, PeerInfo{
			ID:        p,
			Addrs:     []ma.Multiaddr{c.RemoteMultiaddr()},
			Direction: c.Stat().Direction,
			Latency:   n.host.Peerstore().LatencyEWMA(p),
			Relayed:   true,
			Transport: transportOf(c.RemoteMultiaddr()),
		})
	}
	// A peer counts as relayed only if none of its connections is direct.
	for _, c := range n.host.Network().Conns() {
		if !c.Stat().Limited && !isRelayed(c.RemoteMultiaddr()) {
			i := seen[c.RemotePeer()]
			out[i].Relayed = false
			out[i].Transport = transportOf(c.RemoteMultiaddr())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func isRelayed(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// transportOf names the transport of a connection's address.
func transportOf(a ma.Multiaddr) string {
	switch {
	case isRelayed(a):
		return "relay"
	case hasProto(a, ma.P_QUIC_V1):
		return "quic"
	case hasProto(a, ma.P_WEBTRANSPORT):
		return "webtransport"
	case hasProto(a, ma.P_TCP):
		return "tcp"
	}
	return "other"
}

func hasProto(a ma.Multiaddr, code int) bool {
	_, err := a.ValueForProtocol(code)
	return err == nil
}

// Policy returns the connect policy in force.
func (n *Node) Policy() Policy {
	p := n.grants.Policy()
	return Policy{Mode: p.Mode, Allow: p.Allow, SessionLifetime: p.Lifetime, MinTrust: p.MinTrust}
}

// SetPolicy changes the connect policy for requests that arrive from now on.
func (n *Node) SetPolicy(p Policy) error {
	gp, err := p.toGrants()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return n.grants.SetPolicy(gp)
}

func (p Policy) toGrants() (grants.Policy, error) {
	gp := grants.Policy{Mode: p.Mode, Allow: p.Allow, Lifetime: p.SessionLifetime, MinTrust: p.MinTrust}
	if gp.Mode == "" {
		gp.Mode = grants.Open
	}
	return gp, gp.Validate()
}
