package simnet

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	bconnmgr "github.com/libp2p/go-libp2p/p2p/net/connmgr"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

// ErrOffline is the error of a dial to a peer that has left the network.
var ErrOffline = errors.New("simnet: peer is offline")

// Host is a mocknet host as the harness hands it to a node. Every way out
// of it — Connect, NewStream, and DialPeer on its Network — first makes the
// mocknet link to the other peer if there is none (with that pair's
// latency), charges connection set-up, and fails after a timeout for a
// peer that has left. Streams in both directions are wrapped to count
// bytes and to close only once their last write has arrived.
type Host struct {
	host.Host // the mocknet host
	p         *Peer
	n         *Net
	cm        *bconnmgr.BasicConnMgr
	nw        lazyNetwork
}

func newHost(n *Net, p *Peer, inner host.Host) (*Host, error) {
	h := &Host{Host: inner, p: p, n: n}
	h.nw = lazyNetwork{Network: inner.Network(), h: h}
	if n.opts.ConnHigh > 0 {
		cm, err := bconnmgr.NewConnManager(n.opts.ConnLow, n.opts.ConnHigh, bconnmgr.WithGracePeriod(n.opts.ConnGrace),
			bconnmgr.WithSilencePeriod(min(10*time.Second, max(n.opts.ConnGrace/2, time.Second))))
		if err != nil {
			return nil, fmt.Errorf("connection manager: %w", err)
		}
		h.cm = cm
		inner.Network().Notify(cm.Notifee())
	}
	return h, nil
}

// Network is the host's network, with DialPeer and NewStream going through
// the harness.
func (h *Host) Network() network.Network { return &h.nw }

// ConnManager is the host's real go-libp2p connection manager when the net
// has one (mocknet hosts otherwise have none, and connections pile up).
// Unless the net keeps protections, a protection (kad-dht protects the
// peers of its two widest buckets) becomes a high-valued tag, so the
// manager may still trim those connections.
func (h *Host) ConnManager() connmgr.ConnManager {
	switch {
	case h.cm == nil:
		return h.Host.ConnManager()
	case h.n.opts.KeepProtections:
		return h.cm
	}
	return unprotected{h.cm}
}

// unprotected turns protections into tags.
type unprotected struct{ *bconnmgr.BasicConnMgr }

const protectValue = 100

func (u unprotected) Protect(p peer.ID, tag string) {
	u.BasicConnMgr.TagPeer(p, "protect:"+tag, protectValue)
}

func (u unprotected) Unprotect(p peer.ID, tag string) bool {
	u.BasicConnMgr.UntagPeer(p, "protect:"+tag)
	return false
}

func (u unprotected) IsProtected(peer.ID, string) bool { return false }

// Connect connects to ai.ID, making the link first.
func (h *Host) Connect(ctx context.Context, ai peer.AddrInfo) error {
	if err := h.n.prepareDial(ctx, h.p, ai.ID); err != nil {
		return err
	}
	return h.Host.Connect(ctx, ai)
}

// NewStream opens a stream to p, making the link first.
func (h *Host) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	if err := h.n.prepareDial(ctx, h.p, p); err != nil {
		return nil, err
	}
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	cls := ProtoOther
	if len(pids) > 0 {
		cls = protoClass(pids[0])
	}
	h.p.C.StreamsOut[cls].Add(1)
	if cls == ProtoFind {
		if op := OpFrom(ctx); op != nil {
			op.Asks.Add(1)
		}
	}
	return h.wrap(s, cls), nil
}

// SetStreamHandler registers handler for pid, handing it wrapped streams.
func (h *Host) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, h.wrapHandler(handler))
}

// SetStreamHandlerMatch registers handler for protocols match accepts,
// handing it wrapped streams.
func (h *Host) SetStreamHandlerMatch(pid protocol.ID, match func(protocol.ID) bool, handler network.StreamHandler) {
	h.Host.SetStreamHandlerMatch(pid, match, h.wrapHandler(handler))
}

// Close closes the mocknet host and the connection manager.
func (h *Host) Close() error {
	err := h.Host.Close()
	if h.cm != nil {
		_ = h.cm.Close()
	}
	return err
}

func (h *Host) wrapHandler(handler network.StreamHandler) network.StreamHandler {
	return func(s network.Stream) { handler(h.wrap(s, protoClass(s.Protocol()))) }
}

func (h *Host) wrap(s network.Stream, cls Proto) network.Stream {
	var lat time.Duration
	if q := h.n.PeerByID(s.Conn().RemotePeer()); q != nil {
		lat = h.n.latency(h.p, q)
	}
	return &stream{Stream: s, c: &h.p.C, cls: cls, lat: lat}
}

type lazyNetwork struct {
	network.Network
	h *Host
}

func (w *lazyNetwork) DialPeer(ctx context.Context, p peer.ID) (network.Conn, error) {
	if err := w.h.n.prepareDial(ctx, w.h.p, p); err != nil {
		return nil, err
	}
	return w.Network.DialPeer(ctx, p)
}

func (w *lazyNetwork) NewStream(ctx context.Context, p peer.ID) (network.Stream, error) {
	if err := w.h.n.prepareDial(ctx, w.h.p, p); err != nil {
		return nil, err
	}
	return w.Network.NewStream(ctx, p)
}

// stream counts the bytes written on a mocknet stream and holds a close
// back until the last write has arrived at the other end. (A mocknet
// stream delivers small writes in a batch when their latency has passed,
// or at once when the stream is closed: without the hold, a request
// written and closed would skip its link's latency.)
type stream struct {
	network.Stream
	c    *Counters
	cls  Proto
	lat  time.Duration
	last atomic.Int64 // when the last write arrives, Unix nanoseconds
}

func (s *stream) Write(p []byte) (int, error) {
	n, err := s.Stream.Write(p)
	if n > 0 {
		s.c.BytesOut[s.cls].Add(int64(n))
		s.last.Store(time.Now().Add(s.lat).UnixNano())
	}
	return n, err
}

func (s *stream) pending() time.Duration {
	at := s.last.Load()
	if at == 0 {
		return 0
	}
	return time.Until(time.Unix(0, at))
}

func (s *stream) CloseWrite() error {
	if d := s.pending(); d > 0 {
		time.AfterFunc(d, func() { _ = s.Stream.CloseWrite() })
		return nil
	}
	return s.Stream.CloseWrite()
}

func (s *stream) Close() error {
	if d := s.pending(); d > 0 {
		_ = s.Stream.CloseRead()
		time.AfterFunc(d, func() { _ = s.Stream.Close() })
		return nil
	}
	return s.Stream.Close()
}

// prepareDial gets from ready to reach to: nothing to do when they are
// connected; otherwise the link is made (once per pair), connection set-up
// is charged (DialRTTs round trips, one set-up per ordered pair at a time)
// and the connection opened. A departed peer costs DeadDial, then fails.
func (n *Net) prepareDial(ctx context.Context, from *Peer, to peer.ID) error {
	if to == from.ID || from.Host.Host.Network().Connectedness(to) == network.Connected {
		return nil
	}
	target := n.PeerByID(to)
	if target == nil {
		return fmt.Errorf("simnet: %s is not a peer of this net", to)
	}
	if target.dead.Load() {
		from.C.DeadDials.Add(1)
		if err := sleepCtx(ctx, n.opts.DeadDial); err != nil {
			return err
		}
		return ErrOffline
	}
	if err := n.ensureLink(from, target); err != nil {
		return err
	}
	if n.opts.DialRTTs <= 0 {
		from.C.Dials.Add(1)
		return nil
	}
	key := uint64(from.Slot)<<32 | uint64(target.Slot)
	n.flightMu.Lock()
	ch, waiting := n.flights[key]
	if !waiting {
		ch = make(chan struct{})
		n.flights[key] = ch
	}
	n.flightMu.Unlock()
	if waiting {
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer func() {
		n.flightMu.Lock()
		delete(n.flights, key)
		n.flightMu.Unlock()
		close(ch)
	}()
	from.C.Dials.Add(1)
	if err := sleepCtx(ctx, time.Duration(n.opts.DialRTTs*float64(2*n.latency(from, target)))); err != nil {
		return err
	}
	if target.dead.Load() {
		return ErrOffline
	}
	_, err := from.Host.Host.Network().DialPeer(ctx, to)
	return err
}

// ensureLink makes the mocknet link between a and b, once.
func (n *Net) ensureLink(a, b *Peer) error {
	lo, hi := min(a.Slot, b.Slot), max(a.Slot, b.Slot)
	key := uint64(lo)<<32 | uint64(hi)
	n.linkMu.Lock()
	defer n.linkMu.Unlock()
	if _, ok := n.links[key]; ok {
		return nil
	}
	l, err := n.mn.LinkPeers(a.ID, b.ID)
	if err != nil {
		return fmt.Errorf("simnet: link %d-%d: %w", a.Slot, b.Slot, err)
	}
	l.SetOptions(mocknet.LinkOptions{Latency: n.latency(a, b)})
	n.links[key] = struct{}{}
	return nil
}

// LinksMade is how many links the harness has made so far.
func (n *Net) LinksMade() int {
	n.linkMu.Lock()
	defer n.linkMu.Unlock()
	return len(n.links)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
