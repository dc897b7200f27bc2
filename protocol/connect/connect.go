// Package connect implements /pullnet/connect/1.0.0: a consumer asks a
// provider for access to one of its resources and gets a grant (a session,
// the access details and a signed receipt) or a decline with a reason.
//
// The provider's decision may take a while (a participant approving by
// hand), so the stream stays open until the Handler returns or the deadline
// passes.
package connect

import (
	"context"
	"fmt"
	"io"
	"log/slog"
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
	"github.com/pullnet/pullnet/resource"
)

// ID is the protocol ID of connect.
const ID protocol.ID = "/pullnet/connect/1.0.0"

// ServiceName is the resource-manager service of connect's streams.
const ServiceName = "pullnet.connect"

const (
	// MaxRequestSize caps a ConnectRequest (an ID and a short message).
	MaxRequestSize = 4 << 10
	// MaxResponseSize caps a ConnectResponse (access details and a receipt).
	MaxResponseSize = signed.MaxEnvelopeSize + 4<<10
	// MaxMessageLen caps the consumer's message to the provider.
	MaxMessageLen = 1 << 10
	// DefaultTimeout bounds an exchange when the caller's context has no
	// deadline: long enough for a participant to approve by hand.
	DefaultTimeout = 3 * time.Minute
)

// Request is what a consumer asks for.
type Request struct {
	ResourceID string
	Message    string
}

// Response is a grant or a decline.
type Response struct {
	Granted bool
	Session string
	Access  resource.Access
	// Receipt is the provider's signed receipt (see signed.SealReceipt).
	Receipt []byte
	Reason  string
}

// Handler decides connect requests on the provider's side. It may block
// until ctx ends (the stream's deadline), and must then decline.
type Handler interface {
	HandleConnect(ctx context.Context, from peer.ID, req Request) Response
}

// Stats counts what the service has seen.
type Stats struct {
	Requests  atomic.Int64
	Granted   atomic.Int64
	Declined  atomic.Int64
	Malformed atomic.Int64
}

// Service answers connect requests through its Handler.
type Service struct {
	host    host.Host
	handler Handler
	timeout time.Duration
	log     *slog.Logger
	Stats   Stats
}

// NewService registers the connect handler on h. timeout bounds each
// request's handling (zero means DefaultTimeout).
func NewService(h host.Host, handler Handler, timeout time.Duration, logger *slog.Logger) *Service {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	s := &Service{host: h, handler: handler, timeout: timeout, log: logger}
	h.SetStreamHandler(ID, s.handle)
	return s
}

// Close removes the handler.
func (s *Service) Close() { s.host.RemoveStreamHandler(ID) }

func (s *Service) handle(str network.Stream) {
	// The deadline leaves the handler its whole timeout plus time to answer.
	release, err := streams.Accept(str, ServiceName, MaxRequestSize+MaxResponseSize, s.timeout+10*time.Second)
	if err != nil {
		s.log.Debug("connect: refused stream", "peer", str.Conn().RemotePeer(), "err", err)
		return
	}
	defer release()
	from := str.Conn().RemotePeer()

	req, err := readRequest(str)
	if err != nil {
		s.Stats.Malformed.Add(1)
		s.log.Info("connect: dropped malformed request", "peer", from, "err", err)
		str.Reset()
		return
	}
	s.Stats.Requests.Add(1)
	var resp Response
	switch {
	case req.GetResourceId() == "":
		resp = Response{Reason: "request names no resource"}
	case len(req.GetMessage()) > MaxMessageLen:
		resp = Response{Reason: fmt.Sprintf("message is %d bytes, at most %d allowed", len(req.GetMessage()), MaxMessageLen)}
	default:
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		resp = s.handler.HandleConnect(ctx, from, Request{ResourceID: req.GetResourceId(), Message: req.GetMessage()})
		cancel()
	}
	if resp.Granted {
		s.Stats.Granted.Add(1)
	} else {
		s.Stats.Declined.Add(1)
	}
	if err := pbio.NewDelimitedWriter(str).WriteMsg(responseToWire(resp)); err != nil {
		s.log.Debug("connect: write", "peer", from, "err", err)
		str.Reset()
		return
	}
	_ = str.Close()
}

// Ask sends req to provider p and waits for its decision. A grant is checked
// before it is returned: the receipt must be signed by p, name this host as
// the consumer, and match the session and resource.
func Ask(ctx context.Context, h host.Host, p peer.ID, req Request) (Response, error) {
	// A request and its answer are small: they may cross a relayed
	// connection, whose limits are sized for exactly such exchanges.
	str, err := h.NewStream(network.WithAllowLimitedConn(ctx, "pullnet-connect"), p, ID)
	if err != nil {
		return Response{}, fmt.Errorf("connect: open stream to %s: %w", p, err)
	}
	stop := streams.Bind(ctx, str, DefaultTimeout)
	defer stop()
	if err := str.Scope().SetService(ServiceName); err != nil {
		str.Reset()
		return Response{}, fmt.Errorf("connect: %w", err)
	}
	if err := pbio.NewDelimitedWriter(str).WriteMsg(&wirev1.ConnectRequest{ResourceId: req.ResourceID, Message: req.Message}); err != nil {
		str.Reset()
		return Response{}, fmt.Errorf("connect: send to %s: %w", p, err)
	}
	_ = str.CloseWrite()
	m, err := readResponse(str)
	if err != nil {
		str.Reset()
		if ctx.Err() != nil {
			return Response{}, fmt.Errorf("connect: waiting for %s: %w", p, ctx.Err())
		}
		return Response{}, fmt.Errorf("connect: read from %s: %w", p, err)
	}
	_ = str.Close()
	resp := responseFromWire(m)
	if !resp.Granted {
		return resp, nil
	}
	rc, err := signed.OpenReceipt(resp.Receipt)
	if err != nil {
		return Response{}, fmt.Errorf("connect: grant from %s: %w", p, err)
	}
	if rc.Provider != p || rc.Consumer != h.ID() || rc.Session != resp.Session || rc.ResourceID != req.ResourceID {
		return Response{}, fmt.Errorf("connect: grant from %s: receipt does not match the session", p)
	}
	return resp, nil
}

// readRequest decodes one length-delimited ConnectRequest of at most
// MaxRequestSize bytes.
func readRequest(r io.Reader) (*wirev1.ConnectRequest, error) {
	return streams.ReadMsg[wirev1.ConnectRequest](r, MaxRequestSize)
}

// readResponse decodes one length-delimited ConnectResponse of at most
// MaxResponseSize bytes.
func readResponse(r io.Reader) (*wirev1.ConnectResponse, error) {
	return streams.ReadMsg[wirev1.ConnectResponse](r, MaxResponseSize)
}

func responseToWire(r Response) *wirev1.ConnectResponse {
	m := &wirev1.ConnectResponse{Granted: r.Granted, SessionId: r.Session, Receipt: r.Receipt, Reason: r.Reason}
	if r.Access.Type != "" {
		m.Access = &wirev1.Access{Type: r.Access.Type, Value: r.Access.Value}
	}
	return m
}

func responseFromWire(m *wirev1.ConnectResponse) Response {
	r := Response{Granted: m.GetGranted(), Session: m.GetSessionId(), Receipt: m.GetReceipt(), Reason: m.GetReason()}
	if a := m.GetAccess(); a != nil {
		r.Access = resource.Access{Type: a.GetType(), Value: a.GetValue()}
	}
	return r
}
