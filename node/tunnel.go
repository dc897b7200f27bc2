package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pullnet/pullnet/internal/forward"
	"github.com/pullnet/pullnet/internal/grants"
	"github.com/pullnet/pullnet/protocol/tunnel"
	"github.com/pullnet/pullnet/resource"
)

// HeldSession is a session this node was granted by a provider.
type HeldSession struct {
	Session    string          `json:"session"`
	ResourceID string          `json:"resource_id"`
	Provider   peer.ID         `json:"provider"`
	Access     resource.Access `json:"access"`
	Receipt    []byte          `json:"receipt"`
	Expires    time.Time       `json:"expires"`
	// ProviderAddrs are where the provider was reached when the session was
	// granted: where to dial it again after a restart.
	ProviderAddrs []ma.Multiaddr `json:"provider_addrs,omitempty"`
}

// SessionInfo describes a session from this node's side.
type SessionInfo struct {
	Session    string
	ResourceID string
	// Role is "provider" for a session this node granted, "consumer" for
	// one it holds.
	Role string
	// Peer is the other side.
	Peer            peer.ID
	Issued, Expires time.Time
	Revoked         bool
	// BytesIn and BytesOut count tunnel traffic as this node saw it.
	BytesIn, BytesOut int64
	TunnelsOpen       int64
}

// ForwardInfo describes a port forward: a local listener whose connections
// go through tunnels to a provider's service.
type ForwardInfo struct {
	Session    string
	ResourceID string
	Provider   string
	// Listen is the local address the forward listens on.
	Listen            string
	BytesIn, BytesOut int64
	ConnsOpen         int64
	ConnsTotal        int64
	// Err is the last error a connection met, or why a remembered forward
	// could not be restored.
	Err     string
	Active  bool
	Created time.Time
}

func (n *Node) keepHeld(ctx context.Context, g Grant) error {
	h := HeldSession{Session: g.Session, ResourceID: g.ResourceID, Provider: g.Provider, Access: g.Access, Receipt: g.Receipt, Expires: g.Expires,
		ProviderAddrs: n.host.Peerstore().Addrs(g.Provider)}
	if err := n.held.Put(ctx, g.Session, h); err != nil {
		return fmt.Errorf("remember session: %w", err)
	}
	return nil
}

func (n *Node) heldSession(ctx context.Context, session string) (HeldSession, error) {
	h, err := n.held.Get(ctx, session)
	if errors.Is(err, ds.ErrNotFound) {
		return h, fmt.Errorf("%w: this node holds no session %s", ErrNotFound, session)
	}
	return h, err
}

// openTunnel opens a tunnel stream to the service of a held session.
func (n *Node) openTunnel(ctx context.Context, session string) (network.Stream, error) {
	h, err := n.heldSession(ctx, session)
	if err != nil {
		return nil, err
	}
	if h.Access.Type != resource.AccessTCP {
		return nil, fmt.Errorf("%w: session %s is for a %q resource, not a TCP service", ErrInvalid, session, h.Access.Type)
	}
	if !h.Expires.IsZero() && time.Now().After(h.Expires) {
		return nil, fmt.Errorf("session %s expired at %s; connect again", session, h.Expires.Format(time.RFC3339))
	}
	if err := n.findAddrs(ctx, h.Provider, h.ProviderAddrs); err != nil {
		return nil, err
	}
	str, err := tunnel.Open(n.directOrRelayed(ctx, h.Provider), n.host, h.Provider, h.Receipt)
	if err != nil {
		return nil, fmt.Errorf("session %s: %w", session, err)
	}
	return str, nil
}

// findAddrs makes sure the host can dial p: it is connected or knows an
// address; else it tries the addresses p had when the session was granted
// and asks the DHT for current ones.
func (n *Node) findAddrs(ctx context.Context, p peer.ID, remembered []ma.Multiaddr) error {
	if n.host.Network().Connectedness(p) == network.Connected || len(n.host.Peerstore().Addrs(p)) > 0 {
		return nil
	}
	n.host.Peerstore().AddAddrs(p, remembered, peerstore.TempAddrTTL)
	ai, err := n.dht.FindPeer(ctx, p)
	if err != nil {
		if len(remembered) > 0 {
			return nil // worth a try
		}
		return fmt.Errorf("provider %s is not reachable: %w", p, err)
	}
	n.host.Peerstore().AddAddrs(p, ai.Addrs, peerstore.TempAddrTTL)
	return nil
}

// holePunchWait is how long a tunnel waits for hole punching to turn a
// relayed connection into a direct one before it settles for the relay.
const holePunchWait = 10 * time.Second

// relayOnlyFor is how long a peer that hole punching failed to reach is
// tunnelled to over the relay without waiting again.
const relayOnlyFor = 5 * time.Minute

// directOrRelayed prepares ctx for a tunnel to p. A tunnel carries bulk
// data, which relays limit to a trickle (go-libp2p's defaults: 128 KiB and
// 2 minutes per relayed connection), so it goes direct when it can: when the
// node reaches p only through a relay, it waits a little for DCUtR's hole
// punching to open a direct connection, and only then settles for the relay,
// saying so.
func (n *Node) directOrRelayed(ctx context.Context, p peer.ID) context.Context {
	nw := n.host.Network()
	if nw.Connectedness(p) == network.Connected {
		return ctx
	}
	n.mu.Lock()
	relayOnly := time.Now().Before(n.relayOnly[p])
	n.mu.Unlock()
	if relayOnly && nw.Connectedness(p) == network.Limited {
		// Hole punching to p failed a moment ago: do not make every new
		// connection wait for it again.
		return network.WithAllowLimitedConn(ctx, "pullnet-tunnel")
	}
	if nw.Connectedness(p) != network.Limited {
		cctx, cancel := context.WithTimeout(ctx, holePunchWait)
		_ = n.host.Connect(network.WithAllowLimitedConn(cctx, "pullnet-tunnel"), peer.AddrInfo{ID: p})
		cancel()
	}
	if nw.Connectedness(p) == network.Limited {
		deadline := time.NewTimer(holePunchWait)
		tick := time.NewTicker(100 * time.Millisecond)
		defer deadline.Stop()
		defer tick.Stop()
	wait:
		for nw.Connectedness(p) != network.Connected {
			select {
			case <-ctx.Done():
				return ctx
			case <-deadline.C:
				break wait
			case <-tick.C:
			}
		}
	}
	if nw.Connectedness(p) == network.Connected {
		return ctx
	}
	n.log.Warn("tunnel goes through a relay: hole punching did not open a direct path; the relay's limits (about 128 KiB and 2 minutes per connection) apply", "provider", p)
	n.mu.Lock()
	n.relayOnly[p] = time.Now().Add(relayOnlyFor)
	n.mu.Unlock()
	return network.WithAllowLimitedConn(ctx, "pullnet-tunnel")
}

// Dial opens a connection to the TCP service of a session this node holds,
// through a tunnel: an embedding program needs no local port.
func (n *Node) Dial(ctx context.Context, session string) (net.Conn, error) {
	str, err := n.openTunnel(ctx, session)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	return tunnel.NewConn(str, n.dialCounters(session)), nil
}

func (n *Node) dialCounters(session string) *tunnel.Counters {
	n.mu.Lock()
	defer n.mu.Unlock()
	c, ok := n.dials[session]
	if !ok {
		c = &tunnel.Counters{}
		n.dials[session] = c
	}
	return c
}

// Forward opens a local listener on listen (host:port; port 0 picks a free
// port) for a session this node holds; every connection to it is carried to
// the provider's service. Forwards survive a restart of the node when it
// has a data directory.
func (n *Node) Forward(ctx context.Context, session, listen string) (ForwardInfo, error) {
	h, err := n.heldSession(ctx, session)
	if err != nil {
		return ForwardInfo{}, fmt.Errorf("forward: %w", err)
	}
	if h.Access.Type != resource.AccessTCP {
		return ForwardInfo{}, fmt.Errorf("forward: %w: session %s is for a %q resource, not a TCP service", ErrInvalid, session, h.Access.Type)
	}
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	if _, _, err := net.SplitHostPort(listen); err != nil {
		return ForwardInfo{}, fmt.Errorf("forward: %w: listen address %q: want host:port", ErrInvalid, listen)
	}
	info, err := n.forwards.Open(ctx, forward.Spec{Session: session, ResourceID: h.ResourceID, Provider: h.Provider.String(), Listen: listen})
	if errors.Is(err, forward.ErrExists) {
		return ForwardInfo{}, fmt.Errorf("forward: %w: %v", ErrInvalid, err)
	}
	if err != nil {
		return ForwardInfo{}, fmt.Errorf("forward: %w", err)
	}
	return forwardInfo(info), nil
}

// Forwards lists the node's forwards.
func (n *Node) Forwards() []ForwardInfo {
	list := n.forwards.List()
	out := make([]ForwardInfo, len(list))
	for i, f := range list {
		out[i] = forwardInfo(f)
	}
	return out
}

// CloseForward closes a session's forward and its connections.
func (n *Node) CloseForward(ctx context.Context, session string) error {
	if err := n.forwards.Close(ctx, session); err != nil {
		if errors.Is(err, forward.ErrUnknown) {
			return fmt.Errorf("close forward: %w: %v", ErrNotFound, err)
		}
		return fmt.Errorf("close forward: %w", err)
	}
	return nil
}

func forwardInfo(f forward.Info) ForwardInfo {
	return ForwardInfo{Session: f.Session, ResourceID: f.ResourceID, Provider: f.Provider, Listen: f.Listen,
		BytesIn: f.BytesIn, BytesOut: f.BytesOut, ConnsOpen: f.ConnsOpen, ConnsTotal: f.ConnsTotal,
		Err: f.Err, Active: f.Active, Created: f.Created}
}

// Revoke ends a session this node granted: live tunnels under it close
// and no new one opens.
func (n *Node) Revoke(ctx context.Context, session string) error {
	if err := n.grants.Revoke(ctx, session); err != nil {
		if errors.Is(err, grants.ErrUnknownSession) {
			return fmt.Errorf("revoke: %w: %v", ErrNotFound, err)
		}
		return fmt.Errorf("revoke: %w", err)
	}
	closed := n.tunnels.Revoke(session)
	n.log.Info("revoked session", "session", session, "tunnels_closed", closed)
	return nil
}

// Sessions lists the sessions this node granted and those it holds.
func (n *Node) Sessions(ctx context.Context) ([]SessionInfo, error) {
	var out []SessionInfo
	for _, s := range n.grants.Sessions() {
		p, _ := peer.Decode(s.Consumer)
		si := SessionInfo{Session: s.ID, ResourceID: s.ResourceID, Role: "provider", Peer: p, Issued: s.Issued, Expires: s.Expires, Revoked: s.Revoked}
		if c, ok := n.tunnels.Counters(s.ID); ok {
			si.BytesIn, si.BytesOut, si.TunnelsOpen = c.In.Load(), c.Out.Load(), c.Open.Load()
		}
		out = append(out, si)
	}
	held, err := n.held.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	fwds := map[string]forward.Info{}
	for _, f := range n.forwards.List() {
		fwds[f.Session] = f
	}
	for _, h := range held {
		si := SessionInfo{Session: h.Session, ResourceID: h.ResourceID, Role: "consumer", Peer: h.Provider, Expires: h.Expires}
		c := n.dialCounters(h.Session)
		f := fwds[h.Session]
		si.BytesIn, si.BytesOut = c.In.Load()+f.BytesIn, c.Out.Load()+f.BytesOut
		si.TunnelsOpen = c.Open.Load() + f.ConnsOpen
		out = append(out, si)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Expires.After(out[j].Expires) })
	return out, nil
}

// checkServiceAddr accepts host:port with a numeric port.
func checkServiceAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return fmt.Errorf("service address %q: want host:port, e.g. 127.0.0.1:8080", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return fmt.Errorf("service address %q: bad port", addr)
	}
	return nil
}
