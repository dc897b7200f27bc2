// Package control serves pulld's control API: the ControlService of
// proto/pullnet/control/v1, backed by a node, on a unix socket.
//
// The handler is built with connect-go, so one handler answers gRPC,
// gRPC-Web and Connect's HTTP/JSON; Serve speaks HTTP/1.1 and unencrypted
// HTTP/2 so that all of them work over the socket. The generated types stay
// in this package: the node side sees node and resource types, and clients
// use peerctl/client.
package control

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"math"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pullnet/pullnet/internal/control/resourcepb"
	"github.com/pullnet/pullnet/internal/watches"
	"github.com/pullnet/pullnet/node"
	controlv1 "github.com/pullnet/pullnet/proto/gen/pullnet/control/v1"
	"github.com/pullnet/pullnet/proto/gen/pullnet/control/v1/controlv1connect"
	"github.com/pullnet/pullnet/resource"
)

// Backend is what the control API needs of a node. *node.Node implements it;
// tests of the server and of its clients use a stand-in.
type Backend interface {
	ID() peer.ID
	Addrs() []ma.Multiaddr
	Peers() []node.PeerInfo
	Policy() node.Policy
	Resources() []resource.Resource
	Advertise(ctx context.Context, r resource.Resource) (resource.Resource, error)
	Withdraw(ctx context.Context, id string) error
	Find(ctx context.Context, query string, opt node.FindOptions) iter.Seq2[node.Result, error]
	Connect(ctx context.Context, id, message string) (node.Grant, error)
	Requests() []node.Request
	Approve(session string) error
	Decline(session, reason string) error

	// Reachability is "public", "private" or "unknown".
	Reachability() string
	RelayAddrs() []ma.Multiaddr
	Forward(ctx context.Context, session, listen string) (node.ForwardInfo, error)
	Forwards() []node.ForwardInfo
	CloseForward(ctx context.Context, session string) error
	Sessions(ctx context.Context) ([]node.SessionInfo, error)
	Revoke(ctx context.Context, session string) error
	Lineage(ctx context.Context, id string, depth int) (node.LineageNode, error)
	Demand(since time.Duration) node.DemandReport
	Doctor(ctx context.Context) node.DoctorReport
	// Wants (wants.go).
	Want(ctx context.Context, query, description string, ttl time.Duration) (node.WantInfo, error)
	Wants(ctx context.Context, query string) ([]node.WantInfo, error)
	MyWants(ctx context.Context) ([]node.WantInfo, error)
	Unwant(ctx context.Context, id string) error
	// Ratings and trust (trust.go).
	Rate(ctx context.Context, session string, score float64, comment string) (node.Rating, error)
	Ratings(ctx context.Context, p peer.ID, limit int) ([]node.Rating, error)
	Trust(p peer.ID) node.TrustScore
	TrustScores(limit int) []node.TrustScore
	TrustWhy(p peer.ID, depth, width int) node.TrustExplanation
	SetTrust(ctx context.Context, p peer.ID, weight float64) error
}

var _ Backend = (*node.Node)(nil)

// Options describe the daemon behind the API.
type Options struct {
	// DataDir is the daemon's data directory, reported by Status.
	DataDir string
	// Version is the daemon's version, reported by Status.
	Version string
	// Logger receives internal errors and recovered panics. Nil discards.
	Logger *slog.Logger
	// Watches is the daemon's registry of watches (see watch.go). Nil
	// makes the watch calls answer Unimplemented.
	Watches *watches.Registry
}

// Limits and defaults of the calls that wait on the network.
const (
	// DefaultFindTimeout bounds a find whose request sets no timeout.
	DefaultFindTimeout = 10 * time.Second
	// MaxFindTimeout caps any find's timeout.
	MaxFindTimeout = 5 * time.Minute
	// MaxFindLimit caps a find's result limit; a larger limit is lowered to
	// it, since a limit is only an upper bound anyway.
	MaxFindLimit = 1000
	// DefaultConnectTimeout bounds a connect whose request sets no timeout.
	// It is long because the provider may be asking its participant.
	DefaultConnectTimeout = 150 * time.Second
	// MaxConnectTimeout caps any connect's timeout.
	MaxConnectTimeout = 10 * time.Minute
	// maxRequestBytes bounds a request message. A resource at its limits is
	// far smaller.
	maxRequestBytes = 1 << 20
)

// NewHandler returns the control API's route prefix and handler, backed by b.
func NewHandler(b Backend, opts Options) (path string, h http.Handler) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &server{b: b, opts: opts, log: log}
	return controlv1connect.NewControlServiceHandler(s,
		connect.WithReadMaxBytes(maxRequestBytes),
		// A bug in a backend must cost one call, not the daemon or the
		// connection the call came on.
		connect.WithRecover(func(_ context.Context, spec connect.Spec, _ http.Header, p any) error {
			log.Error("control API call panicked", "procedure", spec.Procedure, "panic", p, "stack", string(debug.Stack()))
			return connect.NewError(connect.CodeInternal, errors.New("internal error"))
		}),
	)
}

type server struct {
	b    Backend
	opts Options
	log  *slog.Logger

	// Calls still being built answer Unimplemented; remove this once
	// every RPC has its handler, so the compiler checks completeness.
	controlv1connect.UnimplementedControlServiceHandler
}

var _ controlv1connect.ControlServiceHandler = (*server)(nil)

func (s *server) Status(ctx context.Context, _ *connect.Request[controlv1.StatusRequest]) (*connect.Response[controlv1.StatusResponse], error) {
	id := s.b.ID()
	return connect.NewResponse(&controlv1.StatusResponse{
		PeerId:    id.String(),
		Addrs:     fullAddrs(id, s.b.Addrs()),
		Peers:     uint32(len(s.b.Peers())),
		Resources: uint32(len(s.b.Resources())),
		Version:   s.opts.Version,
		DataDir:   s.opts.DataDir,
		Policy:    policyMode(s.b.Policy()),
		MinTrust:  s.b.Policy().MinTrust,
		// RelayAddrs are full already; fullAddrs leaves them as they are.
		Reachability: s.b.Reachability(),
		RelayAddrs:   fullAddrs(id, s.b.RelayAddrs()),
	}), nil
}

func (s *server) Peers(ctx context.Context, _ *connect.Request[controlv1.PeersRequest]) (*connect.Response[controlv1.PeersResponse], error) {
	infos := s.b.Peers()
	out := make([]*controlv1.Peer, 0, len(infos))
	for _, p := range infos {
		out = append(out, peerToWire(p))
	}
	return connect.NewResponse(&controlv1.PeersResponse{Peers: out}), nil
}

func (s *server) ListResources(ctx context.Context, _ *connect.Request[controlv1.ListResourcesRequest]) (*connect.Response[controlv1.ListResourcesResponse], error) {
	rs := s.b.Resources()
	out := make([]*controlv1.Resource, 0, len(rs))
	for _, r := range rs {
		out = append(out, resourcepb.ToProto(r))
	}
	return connect.NewResponse(&controlv1.ListResourcesResponse{Resources: out}), nil
}

func (s *server) Advertise(ctx context.Context, req *connect.Request[controlv1.AdvertiseRequest]) (*connect.Response[controlv1.AdvertiseResponse], error) {
	m := req.Msg.GetResource()
	switch {
	case m == nil:
		return nil, invalidArgument("resource is required")
	case strings.TrimSpace(m.GetKind()) == "":
		return nil, invalidArgument("resource kind is required")
	case strings.TrimSpace(m.GetName()) == "":
		return nil, invalidArgument("resource name is required")
	}
	r, err := s.b.Advertise(ctx, resourcepb.FromProto(m))
	if err != nil {
		return nil, s.toConnectError("advertise", err)
	}
	return connect.NewResponse(&controlv1.AdvertiseResponse{Id: r.ID, Seq: r.Seq}), nil
}

func (s *server) Withdraw(ctx context.Context, req *connect.Request[controlv1.WithdrawRequest]) (*connect.Response[controlv1.WithdrawResponse], error) {
	id, err := required("id", req.Msg.GetId())
	if err != nil {
		return nil, err
	}
	if err := s.b.Withdraw(ctx, id); err != nil {
		return nil, s.toConnectError("withdraw", err)
	}
	return connect.NewResponse(&controlv1.WithdrawResponse{}), nil
}

// The causes of the deadlines the server sets, which tell them apart from
// the caller's.
var (
	errFindTimedOut    = errors.New("find timed out")
	errConnectTimedOut = errors.New("connect timed out")
)

func (s *server) Find(ctx context.Context, req *connect.Request[controlv1.FindRequest], stream *connect.ServerStream[controlv1.FindResponse]) error {
	query, err := required("query", req.Msg.GetQuery())
	if err != nil {
		return err
	}
	timeout, err := timeoutOf(req.Msg.GetTimeoutMs(), DefaultFindTimeout, MaxFindTimeout)
	if err != nil {
		return err
	}
	limit := int(min(req.Msg.GetLimit(), MaxFindLimit))

	findCtx, cancel := context.WithTimeoutCause(ctx, timeout, errFindTimedOut)
	defer cancel()
	sent := 0
	minTrust := req.Msg.GetMinTrust()
	if math.IsNaN(minTrust) || minTrust < -1 || minTrust > 1 {
		return invalidArgument(fmt.Sprintf("min_trust %v: want a value from -1 to 1", minTrust))
	}
	opt := node.FindOptions{Limit: limit, MinTrust: minTrust, Ranked: req.Msg.GetRanked()}
	for res, err := range s.b.Find(findCtx, query, opt) {
		if err != nil {
			// A find runs until its limit or its deadline: reaching the
			// deadline is how a find with few results ends, not a failure.
			if ctx.Err() == nil && errors.Is(context.Cause(findCtx), errFindTimedOut) {
				return nil
			}
			return s.toConnectError("find", err)
		}
		if err := stream.Send(resultToWire(res)); err != nil {
			return err
		}
		sent++
		if limit > 0 && sent >= limit {
			break
		}
	}
	return nil
}

func (s *server) Connect(ctx context.Context, req *connect.Request[controlv1.ConnectRequest]) (*connect.Response[controlv1.ConnectResponse], error) {
	id, err := required("id", req.Msg.GetId())
	if err != nil {
		return nil, err
	}
	timeout, err := timeoutOf(req.Msg.GetTimeoutMs(), DefaultConnectTimeout, MaxConnectTimeout)
	if err != nil {
		return nil, err
	}
	// A bad forward address is refused before the provider is asked, so a
	// typo does not cost a session.
	fwd := strings.TrimSpace(req.Msg.GetForward())
	if fwd != "" {
		if err := checkListen("forward", fwd); err != nil {
			return nil, err
		}
	}
	connectCtx, cancel := context.WithTimeoutCause(ctx, timeout, errConnectTimedOut)
	defer cancel()
	g, err := s.b.Connect(connectCtx, id, req.Msg.GetMessage())
	if err != nil {
		if ctx.Err() == nil && errors.Is(context.Cause(connectCtx), errConnectTimedOut) {
			// Say what the participant waited for, not which context ran
			// out.
			return nil, connect.NewError(connect.CodeDeadlineExceeded,
				fmt.Errorf("no answer from the provider of %s within %v", id, timeout))
		}
		return nil, s.toConnectError("connect", err)
	}
	res := &controlv1.ConnectResponse{
		Granted:     g.Granted,
		Session:     g.Session,
		Reason:      g.Reason,
		Access:      resourcepb.AccessToProto(g.Access),
		Provider:    g.Provider.String(),
		ResourceId:  g.ResourceID,
		ExpiresUnix: unixOrZero(g.Expires),
	}
	if g.Granted && fwd != "" {
		f, err := s.b.Forward(ctx, g.Session, fwd)
		if err != nil {
			// The grant stands: the participant can open the forward
			// later, so the message must carry the session.
			return nil, s.toConnectError("connect", fmt.Errorf(
				"session %s was granted, but its forward was not opened (open it with 'peerctl forward %s'): %w", g.Session, g.Session, err))
		}
		res.Forward = f.Listen
	}
	return connect.NewResponse(res), nil
}

func (s *server) ListRequests(ctx context.Context, _ *connect.Request[controlv1.ListRequestsRequest]) (*connect.Response[controlv1.ListRequestsResponse], error) {
	reqs := s.b.Requests()
	out := make([]*controlv1.ConnectRequestInfo, 0, len(reqs))
	for _, r := range reqs {
		out = append(out, &controlv1.ConnectRequestInfo{
			Session:      r.Session,
			ResourceId:   r.ResourceID,
			Consumer:     r.Consumer.String(),
			Message:      r.Message,
			ReceivedUnix: unixOrZero(r.Received),
		})
	}
	return connect.NewResponse(&controlv1.ListRequestsResponse{Requests: out}), nil
}

func (s *server) Approve(ctx context.Context, req *connect.Request[controlv1.ApproveRequest]) (*connect.Response[controlv1.ApproveResponse], error) {
	session, err := required("session", req.Msg.GetSession())
	if err != nil {
		return nil, err
	}
	if err := s.b.Approve(session); err != nil {
		return nil, s.toConnectError("approve", err)
	}
	return connect.NewResponse(&controlv1.ApproveResponse{}), nil
}

func (s *server) Decline(ctx context.Context, req *connect.Request[controlv1.DeclineRequest]) (*connect.Response[controlv1.DeclineResponse], error) {
	session, err := required("session", req.Msg.GetSession())
	if err != nil {
		return nil, err
	}
	// The reason is optional: the node answers the consumer with a generic
	// one when the participant gives none.
	if err := s.b.Decline(session, strings.TrimSpace(req.Msg.GetReason())); err != nil {
		return nil, s.toConnectError("decline", err)
	}
	return connect.NewResponse(&controlv1.DeclineResponse{}), nil
}

func (s *server) Forward(ctx context.Context, req *connect.Request[controlv1.ForwardRequest]) (*connect.Response[controlv1.ForwardResponse], error) {
	session, err := required("session", req.Msg.GetSession())
	if err != nil {
		return nil, err
	}
	// The node listens on 127.0.0.1 with a free port when none is given.
	listen := strings.TrimSpace(req.Msg.GetListen())
	if listen != "" {
		if err := checkListen("listen", listen); err != nil {
			return nil, err
		}
	}
	f, err := s.b.Forward(ctx, session, listen)
	if err != nil {
		return nil, s.toConnectError("forward", err)
	}
	return connect.NewResponse(&controlv1.ForwardResponse{Forward: forwardToWire(f)}), nil
}

func (s *server) Forwards(ctx context.Context, _ *connect.Request[controlv1.ForwardsRequest]) (*connect.Response[controlv1.ForwardsResponse], error) {
	fs := s.b.Forwards()
	out := make([]*controlv1.ForwardInfo, 0, len(fs))
	for _, f := range fs {
		out = append(out, forwardToWire(f))
	}
	return connect.NewResponse(&controlv1.ForwardsResponse{Forwards: out}), nil
}

func (s *server) CloseForward(ctx context.Context, req *connect.Request[controlv1.CloseForwardRequest]) (*connect.Response[controlv1.CloseForwardResponse], error) {
	session, err := required("session", req.Msg.GetSession())
	if err != nil {
		return nil, err
	}
	if err := s.b.CloseForward(ctx, session); err != nil {
		return nil, s.toConnectError("close forward", err)
	}
	return connect.NewResponse(&controlv1.CloseForwardResponse{}), nil
}

func (s *server) Sessions(ctx context.Context, _ *connect.Request[controlv1.SessionsRequest]) (*connect.Response[controlv1.SessionsResponse], error) {
	ss, err := s.b.Sessions(ctx)
	if err != nil {
		return nil, s.toConnectError("sessions", err)
	}
	out := make([]*controlv1.SessionInfo, 0, len(ss))
	for _, si := range ss {
		out = append(out, &controlv1.SessionInfo{
			Session:     si.Session,
			ResourceId:  si.ResourceID,
			Role:        si.Role,
			Peer:        si.Peer.String(),
			IssuedUnix:  unixOrZero(si.Issued),
			ExpiresUnix: unixOrZero(si.Expires),
			Revoked:     si.Revoked,
			BytesIn:     si.BytesIn,
			BytesOut:    si.BytesOut,
			TunnelsOpen: si.TunnelsOpen,
		})
	}
	return connect.NewResponse(&controlv1.SessionsResponse{Sessions: out}), nil
}

func (s *server) Revoke(ctx context.Context, req *connect.Request[controlv1.RevokeRequest]) (*connect.Response[controlv1.RevokeResponse], error) {
	session, err := required("session", req.Msg.GetSession())
	if err != nil {
		return nil, err
	}
	if err := s.b.Revoke(ctx, session); err != nil {
		return nil, s.toConnectError("revoke", err)
	}
	return connect.NewResponse(&controlv1.RevokeResponse{}), nil
}

// checkListen accepts a local address to listen on: host:port with a
// numeric port, where port 0 picks a free one. The host may be empty
// (every interface), as for net.Listen.
func checkListen(field, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return invalidArgument(fmt.Sprintf("%s %q: want host:port, such as 127.0.0.1:9000 (port 0 picks a free port)", field, addr))
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return invalidArgument(fmt.Sprintf("%s %q: port %q is not a number from 0 to 65535", field, addr, port))
	}
	return nil
}

func forwardToWire(f node.ForwardInfo) *controlv1.ForwardInfo {
	return &controlv1.ForwardInfo{
		Session:     f.Session,
		ResourceId:  f.ResourceID,
		Provider:    f.Provider,
		Listen:      f.Listen,
		BytesIn:     f.BytesIn,
		BytesOut:    f.BytesOut,
		ConnsOpen:   f.ConnsOpen,
		ConnsTotal:  f.ConnsTotal,
		Error:       f.Err,
		CreatedUnix: unixOrZero(f.Created),
		Active:      f.Active,
	}
}

// policyMode names the node's connect policy, spelling out the open policy
// that an empty mode means.
func policyMode(p node.Policy) string {
	if p.Mode == "" {
		return node.PolicyOpen
	}
	return p.Mode
}

func invalidArgument(msg string) *connect.Error {
	return connect.NewError(connect.CodeInvalidArgument, errors.New(msg))
}

// required returns v trimmed, or an InvalidArgument error naming the field
// when v is blank.
func required(field, v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", invalidArgument(field + " is required")
	}
	return v, nil
}

// timeoutOf turns a request's timeout_ms into a duration: def when unset,
// capped at max.
func timeoutOf(ms int64, def, max time.Duration) (time.Duration, error) {
	switch {
	case ms < 0:
		return 0, invalidArgument(fmt.Sprintf("timeout_ms is %d, want a positive number of milliseconds or 0 for the default", ms))
	case ms == 0:
		return def, nil
	case ms > max.Milliseconds():
		return max, nil
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// toConnectError maps a node error to the code a client can act on. The
// message is the node's, which says what went wrong in the participant's
// terms.
func (s *server) toConnectError(op string, err error) error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce
	}
	var code connect.Code
	switch {
	case errors.Is(err, node.ErrNotFound):
		code = connect.CodeNotFound
	case errors.Is(err, node.ErrInvalid):
		code = connect.CodeInvalidArgument
	case errors.Is(err, context.DeadlineExceeded):
		code = connect.CodeDeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = connect.CodeCanceled
	case errors.Is(err, node.ErrClosed):
		code = connect.CodeUnavailable
	default:
		code = connect.CodeInternal
		s.log.Warn("control API call failed", "op", op, "err", err)
	}
	return connect.NewError(code, err)
}

// fullAddrs gives each of the node's addresses with its /p2p/ID suffix, the
// form another participant can dial as it is. If id is not a valid peer ID
// (a stand-in backend), the addresses are reported as they are rather than
// failing Status.
func fullAddrs(id peer.ID, addrs []ma.Multiaddr) []string {
	suffix, suffixErr := ma.NewComponent("p2p", id.String())
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		_, err := a.ValueForProtocol(ma.P_P2P)
		if hasID := err == nil; !hasID && suffixErr == nil {
			a = a.Encapsulate(suffix)
		}
		out = append(out, a.String())
	}
	return out
}

func addrStrings(addrs []ma.Multiaddr) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.String())
	}
	return out
}

func peerToWire(p node.PeerInfo) *controlv1.Peer {
	return &controlv1.Peer{
		PeerId:    p.ID.String(),
		Addrs:     addrStrings(p.Addrs),
		Direction: directionString(p.Direction),
		LatencyUs: p.Latency.Microseconds(),
		Relayed:   p.Relayed,
		Transport: p.Transport,
	}
}

// directionString gives a stable lowercase word for a connection's
// direction, rather than libp2p's display form.
func directionString(d network.Direction) string {
	switch d {
	case network.DirInbound:
		return "inbound"
	case network.DirOutbound:
		return "outbound"
	default:
		return "unknown"
	}
}

func resultToWire(r node.Result) *controlv1.FindResponse {
	return &controlv1.FindResponse{
		Id:        r.Resource.ID,
		Provider:  r.Provider.String(),
		Addrs:     addrStrings(r.Addrs),
		Resource:  resourcepb.ToProto(r.Resource),
		ElapsedUs: r.Elapsed.Microseconds(),
		Score:     r.Score,
		Trust:     r.Trust,
		Rank:      r.Rank,
	}
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
