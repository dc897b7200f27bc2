// Package tunnel implements /pullnet/tunnel/1.0.0: one libp2p stream carries
// one TCP connection from a consumer to a provider's service.
//
// The consumer opens a stream and sends a TunnelOpen with its session token
// (the provider's signed receipt). The provider checks the token offline,
// dials the address it advertised for the resource — never one the consumer
// names — and answers; from then on the stream carries raw bytes both ways,
// with half-closes passed through.
package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio/pbio"

	wirev1 "github.com/pullnet/pullnet/proto/gen/pullnet/wire/v1"
	"github.com/pullnet/pullnet/protocol/signed"
	"github.com/pullnet/pullnet/protocol/streams"
)

// ID is the protocol ID of the tunnel.
const ID protocol.ID = "/pullnet/tunnel/1.0.0"

// ServiceName is the resource-manager service of tunnel streams.
const ServiceName = "pullnet.tunnel"

const (
	// MaxOpenSize caps a TunnelOpen: one signed receipt.
	MaxOpenSize = signed.MaxEnvelopeSize + 1<<10
	// MaxResponseSize caps a TunnelOpenResponse.
	MaxResponseSize = 4 << 10
	// HandshakeTimeout bounds the open exchange, including the provider's
	// dial of its service.
	HandshakeTimeout = 15 * time.Second
	// DialTimeout bounds the provider's dial of its own service.
	DialTimeout = 5 * time.Second
)

// Grant is what a valid token authorizes: a session and the service address
// behind it.
type Grant struct {
	Session string
	Target  string // host:port of the provider's service
}

// Authorizer checks a token offline and returns what it grants, or an error
// whose text is the reason sent to the consumer.
type Authorizer interface {
	Authorize(from peer.ID, token []byte) (Grant, error)
}

// Counters count a session's tunnel traffic, seen from the side that keeps
// them: In is what arrived over the network, Out what was sent.
type Counters struct {
	In, Out atomic.Int64
	Open    atomic.Int64 // tunnels open now
	Total   atomic.Int64 // tunnels opened
}

// Stats counts refusals.
type Stats struct {
	Refused   atomic.Int64 // tokens that did not authorize
	DialFails atomic.Int64 // the service did not answer
	Malformed atomic.Int64
}

// Service serves tunnels to the provider's services.
type Service struct {
	host host.Host
	auth Authorizer
	log  *slog.Logger
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	Stats Stats

	mu       sync.Mutex
	sessions map[string]*session
}

type session struct {
	counters Counters
	live     map[network.Stream]struct{}
	revoked  bool
}

// NewService registers the tunnel handler on h.
func NewService(h host.Host, auth Authorizer, logger *slog.Logger) *Service {
	var d net.Dialer
	s := &Service{host: h, auth: auth, log: logger, dial: d.DialContext, sessions: map[string]*session{}}
	h.SetStreamHandler(ID, s.handle)
	return s
}

// Close removes the handler and resets every live tunnel.
func (s *Service) Close() {
	s.host.RemoveStreamHandler(ID)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ss := range s.sessions {
		for str := range ss.live {
			str.Reset()
		}
	}
}

// Counters returns the traffic counters of a session, if it has had a
// tunnel since the service started.
func (s *Service) Counters(sessionID string) (*Counters, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[sessionID]
	if !ok {
		return nil, false
	}
	return &ss.counters, true
}

// Revoke resets the live tunnels of a session. The Authorizer is what keeps
// new ones from opening.
func (s *Service) Revoke(sessionID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[sessionID]
	if !ok {
		return 0
	}
	n := len(ss.live)
	for str := range ss.live {
		str.Reset()
	}
	return n
}

func (s *Service) track(sessionID string, str network.Stream) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[sessionID]
	if !ok {
		ss = &session{live: map[network.Stream]struct{}{}}
		s.sessions[sessionID] = ss
	}
	ss.live[str] = struct{}{}
	ss.counters.Open.Add(1)
	ss.counters.Total.Add(1)
	return ss
}

func (s *Service) untrack(ss *session, str network.Stream) {
	s.mu.Lock()
	delete(ss.live, str)
	s.mu.Unlock()
	ss.counters.Open.Add(-1)
}

func (s *Service) handle(str network.Stream) {
	from := str.Conn().RemotePeer()
	release, err := streams.Accept(str, ServiceName, MaxOpenSize+CopyBufferSize, HandshakeTimeout)
	if err != nil {
		s.log.Debug("tunnel: refused stream", "peer", from, "err", err)
		return
	}
	defer release()

	open, err := readOpen(str)
	if err != nil {
		s.Stats.Malformed.Add(1)
		s.log.Info("tunnel: dropped malformed open", "peer", from, "err", err)
		str.Reset()
		return
	}
	w := pbio.NewDelimitedWriter(str)
	refuse := func(reason string) {
		_ = w.WriteMsg(&wirev1.TunnelOpenResponse{Reason: reason})
		_ = str.CloseWrite()
		// Give the reason a moment to leave before the reset; the deadline
		// set by Accept bounds the wait.
		_, _ = io.Copy(io.Discard, io.LimitReader(str, 1))
		str.Reset()
	}
	g, err := s.auth.Authorize(from, open.GetToken())
	if err != nil {
		s.Stats.Refused.Add(1)
		s.log.Info("tunnel: refused", "peer", from, "reason", err)
		refuse(err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), DialTimeout)
	conn, err := s.dial(ctx, "tcp", g.Target)
	cancel()
	if err != nil {
		s.Stats.DialFails.Add(1)
		s.log.Warn("tunnel: service unreachable", "session", g.Session, "err", err)
		refuse("the provider's service is not answering")
		return
	}
	local, ok := conn.(halfCloser)
	if !ok { // a "tcp" dial always gives a *net.TCPConn
		conn.Close()
		refuse("the provider's service is not a TCP service")
		return
	}
	if err := w.WriteMsg(&wirev1.TunnelOpenResponse{Ok: true}); err != nil {
		conn.Close()
		str.Reset()
		return
	}
	_ = str.SetDeadline(time.Time{})
	ss := s.track(g.Session, str)
	defer s.untrack(ss, str)
	s.log.Debug("tunnel: open", "session", g.Session, "peer", from)
	Pipe(str, local, &ss.counters.In, &ss.counters.Out)
}

// Open opens a tunnel to peer p's service with the session token. The
// returned stream carries the service's bytes.
func Open(ctx context.Context, h host.Host, p peer.ID, token []byte) (network.Stream, error) {
	str, err := h.NewStream(ctx, p, ID)
	if err != nil {
		return nil, fmt.Errorf("tunnel: open stream to %s: %w", p, err)
	}
	if err := str.Scope().SetService(ServiceName); err != nil {
		str.Reset()
		return nil, fmt.Errorf("tunnel: %w", err)
	}
	// Write at once: the stream's protocol is negotiated lazily, with the
	// first write.
	stop := streams.Bind(ctx, str, HandshakeTimeout)
	if err := pbio.NewDelimitedWriter(str).WriteMsg(&wirev1.TunnelOpen{Token: token}); err != nil {
		stop()
		str.Reset()
		return nil, fmt.Errorf("tunnel: send to %s: %w", p, err)
	}
	resp, err := readResponse(str)
	if !stop() {
		// ctx ended and reset the stream.
		return nil, fmt.Errorf("tunnel: waiting for %s: %w", p, context.Cause(ctx))
	}
	if err != nil {
		str.Reset()
		return nil, fmt.Errorf("tunnel: read from %s: %w", p, err)
	}
	if !resp.GetOk() {
		str.Reset()
		return nil, &RefusedError{Reason: resp.GetReason()}
	}
	_ = str.SetDeadline(time.Time{})
	return str, nil
}

// RefusedError is a provider's refusal to open a tunnel.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return "tunnel refused: " + e.Reason }

// ErrRefused matches every RefusedError with errors.Is.
var ErrRefused = errors.New("tunnel refused")

// Is makes errors.Is(err, ErrRefused) hold.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

func readOpen(r io.Reader) (*wirev1.TunnelOpen, error) {
	return streams.ReadMsg[wirev1.TunnelOpen](r, MaxOpenSize)
}

func readResponse(r io.Reader) (*wirev1.TunnelOpenResponse, error) {
	return streams.ReadMsg[wirev1.TunnelOpenResponse](r, MaxResponseSize)
}
