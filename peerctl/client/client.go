// Package client is the Go client of pulld's control API: the one typed
// client that peerctl, the end-to-end tests and any Go program driving a
// daemon share.
//
// It speaks to the daemon over the unix socket in the daemon's data
// directory and returns plain Go types with stable JSON field names, so a
// caller never sees the generated protobuf types. It does not import libp2p:
// peer IDs and multiaddrs are strings here, as the daemon prints them.
package client

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"connectrpc.com/connect"

	"github.com/pullnet/pullnet/internal/control/resourcepb"
	controlv1 "github.com/pullnet/pullnet/proto/gen/pullnet/control/v1"
	"github.com/pullnet/pullnet/proto/gen/pullnet/control/v1/controlv1connect"
	"github.com/pullnet/pullnet/resource"
)

// SocketName is the file name of the control socket in a data directory.
const SocketName = "pulld.sock"

// SocketPath returns the control socket's path in dataDir.
func SocketPath(dataDir string) string { return filepath.Join(dataDir, SocketName) }

// Client calls one daemon's control API. It is safe for concurrent use.
type Client struct {
	socketPath string
	hc         *http.Client
	rpc        controlv1connect.ControlServiceClient
}

// New returns a client of the daemon whose control socket is socketPath. It
// does not connect until the first call, so a missing daemon shows up as
// that call's error (see ErrNoDaemon).
func New(socketPath string) *Client {
	c := &Client{socketPath: socketPath}
	// The Connect protocol over HTTP/1.1: it needs nothing beyond net/http's
	// defaults, streams a find as a chunked response just as well as gRPC
	// over HTTP/2 would, and its errors are plain JSON that curl users see
	// too. The server speaks gRPC as well, for other languages' clients.
	c.hc = &http.Client{Transport: &http.Transport{
		DialContext:     c.dial,
		IdleConnTimeout: 30 * time.Second,
	}}
	// The host is never resolved: every connection goes to the socket.
	c.rpc = controlv1connect.NewControlServiceClient(c.hc, "http://pulld")
	return c
}

// Close releases the client's idle connections. The client stays usable.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

func (c *Client) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.socketPath)
	switch {
	case err == nil:
		return conn, nil
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		// No socket, or a socket left by a daemon that is gone.
		return nil, &noDaemonError{socket: c.socketPath, err: err}
	default:
		return nil, &dialError{socket: c.socketPath, err: err}
	}
}

// ErrNoDaemon is what calls fail with, wrapped, when no daemon listens on
// the client's socket. The error's message says how to start one.
var ErrNoDaemon = errors.New("no pulld running")

type noDaemonError struct {
	socket string
	err    error
}

func (e *noDaemonError) Error() string {
	dir := filepath.Dir(e.socket)
	return fmt.Sprintf("no pulld running at %s (socket %s): start one with 'pulld run --data %s'", dir, e.socket, dir)
}

func (e *noDaemonError) Is(target error) bool { return target == ErrNoDaemon }
func (e *noDaemonError) Unwrap() error        { return e.err }

// dialError is any other failure to reach the socket, such as a permission
// problem. It exists to keep the HTTP request out of the message.
type dialError struct {
	socket string
	err    error
}

func (e *dialError) Error() string {
	return fmt.Sprintf("cannot reach pulld at %s: %v", e.socket, e.err)
}
func (e *dialError) Unwrap() error { return e.err }

// Error is a failed call: the daemon's answer, or why it could not be
// reached. Its message is one line, fit to show a participant.
type Error struct {
	// Code classifies the failure, as the daemon or the transport saw it:
	// connect.CodeNotFound for an unknown resource or session,
	// connect.CodeInvalidArgument for input to fix, and so on.
	Code    connect.Code
	Message string
	err     error
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.err }

// Code returns the code of an error from this package's calls:
// connect.CodeUnavailable when no daemon runs, connect.CodeUnknown for an
// error that did not come from a call.
func Code(err error) connect.Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if errors.Is(err, ErrNoDaemon) {
		return connect.CodeUnavailable
	}
	return connect.CodeOf(err)
}

// wrap turns an error of the generated client into this package's errors:
// the no-daemon error as it is, everything else as an *Error with the
// daemon's message and without connect's "code: " prefix.
func wrap(err error) error {
	if err == nil {
		return nil
	}
	var nd *noDaemonError
	if errors.As(err, &nd) {
		return nd
	}
	code := connect.CodeOf(err)
	var de *dialError
	if errors.As(err, &de) {
		return &Error{Code: code, Message: de.Error(), err: err}
	}
	msg := err.Error()
	var ce *connect.Error
	if errors.As(err, &ce) && ce.Message() != "" {
		msg = ce.Message()
	}
	// A message may carry a peer's text; keep the error on one line.
	msg = strings.Join(strings.Fields(msg), " ")
	return &Error{Code: code, Message: msg, err: err}
}

// Status says who a daemon is and how it is connected.
type Status struct {
	PeerID string `json:"peer_id"`
	// Addrs are the daemon's full multiaddrs, each ending in /p2p/PeerID.
	Addrs     []string `json:"addrs"`
	Peers     int      `json:"peers"`
	Resources int      `json:"resources"`
	Version   string   `json:"version"`
	DataDir   string   `json:"data_dir"`
	// Policy is how the daemon answers connect requests: open, allowlist or
	// manual.
	Policy string `json:"policy"`
	// MinTrust is the policy's floor on a requester's trust, -1…1; 0
	// means none.
	MinTrust float64 `json:"min_trust"`
	// Reachability is "public", "private" or "unknown": whether peers can
	// dial the daemon directly, as AutoNAT has found.
	Reachability string `json:"reachability"`
	// RelayAddrs are the daemon's addresses through circuit relays, by which
	// peers reach it when it is behind NAT.
	RelayAddrs []string `json:"relay_addrs"`
}

// Peer is one live connection of a daemon.
type Peer struct {
	PeerID string   `json:"peer_id"`
	Addrs  []string `json:"addrs"`
	// Direction is inbound, outbound or unknown.
	Direction string `json:"direction"`
	// LatencyMS is the daemon's estimate of the round trip; 0 when unknown.
	LatencyMS float64 `json:"latency_ms"`
	// Relayed is true when the daemon reaches the peer only through a
	// relay.
	Relayed bool `json:"relayed"`
	// Transport is tcp, quic, webtransport, relay or other.
	Transport string `json:"transport"`
}

// AdvertiseResult identifies the version of a resource a daemon advertised.
type AdvertiseResult struct {
	ID  string `json:"id"`
	Seq uint64 `json:"seq"`
}

// FindOptions tune a find.
type FindOptions struct {
	// Limit stops the find after this many results; 0 leaves it to the
	// daemon.
	Limit int
	// Timeout bounds the find; 0 leaves it to the daemon (10s).
	Timeout time.Duration
	// MinTrust drops results from providers the daemon trusts less (trust
	// runs from -1 through 0, unknown, to +1); 0 means no minimum.
	MinTrust float64
	// Ranked holds the results until the find ends and yields them best
	// first, by Rank; otherwise they come as they arrive.
	Ranked bool
}

// FindResult is one resource a find turned up.
type FindResult struct {
	// ID is the resource's ID, the argument to Connect.
	ID       string `json:"id"`
	Provider string `json:"provider"`
	// Addrs are the provider's addresses as the daemon knows them.
	Addrs    []string          `json:"addrs"`
	Resource resource.Resource `json:"resource"`
	// ElapsedMS is the time from the start of the find to this result.
	ElapsedMS float64 `json:"elapsed_ms"`
	// Score is the result's relevance to the query, in (0, 1].
	Score float64 `json:"score"`
	// Trust is the daemon's trust in the provider, from -1 to +1 (0:
	// nothing known).
	Trust float64 `json:"trust"`
	// Rank is Score × (1+Trust)/2, what ranked finds sort by.
	Rank float64 `json:"rank"`
}

// ConnectOptions tune a connect.
type ConnectOptions struct {
	// Message is shown to the provider's participant if they decide by hand.
	Message string
	// Timeout bounds the wait for the provider's answer; 0 leaves it to the
	// daemon (2m30s).
	Timeout time.Duration
	// Forward, when set, opens a forward for a granted TCP service: a local
	// listener on this host:port (port 0 picks a free one). If the grant
	// comes but the forward fails, Connect fails with a message naming the
	// session, which stays granted.
	Forward string
}

// ConnectResult is a provider's answer to a connect: a session when Granted,
// otherwise the provider's reason.
type ConnectResult struct {
	Granted    bool            `json:"granted"`
	Session    string          `json:"session"`
	Reason     string          `json:"reason"`
	Access     resource.Access `json:"access"`
	Provider   string          `json:"provider"`
	ResourceID string          `json:"resource_id"`
	// Forward is the local address of the forward that ConnectOptions.Forward
	// asked for, such as 127.0.0.1:9000; empty when none was.
	Forward string `json:"forward"`
	// Expires is when the session ends; zero on a decline.
	Expires time.Time `json:"expires,omitzero"`
}

// Forward is a port forward: a local listener of the daemon whose
// connections are carried through tunnels to a provider's service.
type Forward struct {
	Session    string `json:"session"`
	ResourceID string `json:"resource_id"`
	Provider   string `json:"provider"`
	// Listen is the local address the forward listens on.
	Listen string `json:"listen"`
	// BytesIn and BytesOut count the traffic from and to the service.
	BytesIn  int64 `json:"bytes_in"`
	BytesOut int64 `json:"bytes_out"`
	// ConnsOpen and ConnsTotal count the local connections: open now, and
	// accepted since the forward opened.
	ConnsOpen  int64 `json:"conns_open"`
	ConnsTotal int64 `json:"conns_total"`
	// Error is the last error a connection met, or why the forward could
	// not be restored when the daemon restarted.
	Error string `json:"error"`
	// Active is false for a forward the daemon could not restore: it is
	// listed, with the reason in Error, but does not listen.
	Active  bool      `json:"active"`
	Created time.Time `json:"created,omitzero"`
}

// Session is a session from the daemon's side: one it granted as a
// provider, or one it holds as a consumer.
type Session struct {
	Session    string `json:"session"`
	ResourceID string `json:"resource_id"`
	// Role is "provider" for a session the daemon granted, "consumer" for
	// one it holds.
	Role string `json:"role"`
	// Peer is the other side: the consumer or the provider.
	Peer string `json:"peer"`
	// Issued is when the session was granted; zero when the daemon does not
	// know (it is the consumer).
	Issued  time.Time `json:"issued,omitzero"`
	Expires time.Time `json:"expires,omitzero"`
	Revoked bool      `json:"revoked"`
	// BytesIn and BytesOut count tunnel traffic as the daemon saw it.
	BytesIn     int64 `json:"bytes_in"`
	BytesOut    int64 `json:"bytes_out"`
	TunnelsOpen int64 `json:"tunnels_open"`
}

// Request is a connect request waiting for the participant's decision.
type Request struct {
	Session    string    `json:"session"`
	ResourceID string    `json:"resource_id"`
	Consumer   string    `json:"consumer"`
	Message    string    `json:"message"`
	Received   time.Time `json:"received"`
}

// Status reports who the daemon is and how it is connected.
func (c *Client) Status(ctx context.Context) (Status, error) {
	res, err := c.rpc.Status(ctx, connect.NewRequest(&controlv1.StatusRequest{}))
	if err != nil {
		return Status{}, wrap(err)
	}
	m := res.Msg
	return Status{
		PeerID:    m.GetPeerId(),
		Addrs:     nonNil(m.GetAddrs()),
		Peers:     int(m.GetPeers()),
		Resources: int(m.GetResources()),
		Version:   m.GetVersion(),
		DataDir:   m.GetDataDir(),
		Policy:    m.GetPolicy(),
		MinTrust:  m.GetMinTrust(),

		Reachability: m.GetReachability(),
		RelayAddrs:   nonNil(m.GetRelayAddrs()),
	}, nil
}

// Peers lists the daemon's live connections.
func (c *Client) Peers(ctx context.Context) ([]Peer, error) {
	res, err := c.rpc.Peers(ctx, connect.NewRequest(&controlv1.PeersRequest{}))
	if err != nil {
		return nil, wrap(err)
	}
	out := make([]Peer, 0, len(res.Msg.GetPeers()))
	for _, p := range res.Msg.GetPeers() {
		out = append(out, Peer{
			PeerID:    p.GetPeerId(),
			Addrs:     nonNil(p.GetAddrs()),
			Direction: p.GetDirection(),
			LatencyMS: float64(p.GetLatencyUs()) / 1000,
			Relayed:   p.GetRelayed(),
			Transport: p.GetTransport(),
		})
	}
	return out, nil
}

// Resources lists the daemon's own resources.
func (c *Client) Resources(ctx context.Context) ([]resource.Resource, error) {
	res, err := c.rpc.ListResources(ctx, connect.NewRequest(&controlv1.ListResourcesRequest{}))
	if err != nil {
		return nil, wrap(err)
	}
	out := make([]resource.Resource, 0, len(res.Msg.GetResources()))
	for _, m := range res.Msg.GetResources() {
		out = append(out, resourcepb.FromProto(m))
	}
	return out, nil
}

// Advertise creates r, or replaces the daemon's resource r.ID when it is
// set. The daemon sets the owner, seq and update time.
func (c *Client) Advertise(ctx context.Context, r resource.Resource) (AdvertiseResult, error) {
	res, err := c.rpc.Advertise(ctx, connect.NewRequest(&controlv1.AdvertiseRequest{Resource: resourcepb.ToProto(r)}))
	if err != nil {
		return AdvertiseResult{}, wrap(err)
	}
	return AdvertiseResult{ID: res.Msg.GetId(), Seq: res.Msg.GetSeq()}, nil
}

// Withdraw stops advertising the daemon's resource id and forgets it.
func (c *Client) Withdraw(ctx context.Context, id string) error {
	_, err := c.rpc.Withdraw(ctx, connect.NewRequest(&controlv1.WithdrawRequest{Id: id}))
	return wrap(err)
}

// Find searches the network and yields results as the daemon streams them.
// A failure ends the sequence with one non-nil error; a find that simply
// runs out of time ends without one. Breaking out of the loop cancels the
// find.
func (c *Client) Find(ctx context.Context, query string, opt FindOptions) iter.Seq2[FindResult, error] {
	return func(yield func(FindResult, error) bool) {
		stream, err := c.rpc.Find(ctx, connect.NewRequest(&controlv1.FindRequest{
			Query:     query,
			Limit:     uint32(max(opt.Limit, 0)),
			TimeoutMs: millis(opt.Timeout),
			MinTrust:  opt.MinTrust,
			Ranked:    opt.Ranked,
		}))
		if err != nil {
			yield(FindResult{}, wrap(err))
			return
		}
		defer stream.Close()
		for stream.Receive() {
			m := stream.Msg()
			r := FindResult{
				ID:        m.GetId(),
				Provider:  m.GetProvider(),
				Addrs:     nonNil(m.GetAddrs()),
				Resource:  resourcepb.FromProto(m.GetResource()),
				ElapsedMS: float64(m.GetElapsedUs()) / 1000,
				Score:     m.GetScore(),
				Trust:     m.GetTrust(),
				Rank:      m.GetRank(),
			}
			if !yield(r, nil) {
				return
			}
		}
		if err := stream.Err(); err != nil {
			yield(FindResult{}, wrap(err))
		}
	}
}

// Connect asks the provider of resource id for access and waits for its
// answer. A decline is not an error: it is a result with Granted false.
func (c *Client) Connect(ctx context.Context, id string, opt ConnectOptions) (ConnectResult, error) {
	res, err := c.rpc.Connect(ctx, connect.NewRequest(&controlv1.ConnectRequest{
		Id:        id,
		Message:   opt.Message,
		TimeoutMs: millis(opt.Timeout),
		Forward:   opt.Forward,
	}))
	if err != nil {
		return ConnectResult{}, wrap(err)
	}
	m := res.Msg
	return ConnectResult{
		Granted:    m.GetGranted(),
		Session:    m.GetSession(),
		Reason:     m.GetReason(),
		Access:     resourcepb.AccessFromProto(m.GetAccess()),
		Provider:   m.GetProvider(),
		ResourceID: m.GetResourceId(),
		Forward:    m.GetForward(),
		Expires:    fromUnix(m.GetExpiresUnix()),
	}, nil
}

// Requests lists the connect requests waiting for the participant's
// decision.
func (c *Client) Requests(ctx context.Context) ([]Request, error) {
	res, err := c.rpc.ListRequests(ctx, connect.NewRequest(&controlv1.ListRequestsRequest{}))
	if err != nil {
		return nil, wrap(err)
	}
	out := make([]Request, 0, len(res.Msg.GetRequests()))
	for _, m := range res.Msg.GetRequests() {
		r := Request{
			Session:    m.GetSession(),
			ResourceID: m.GetResourceId(),
			Consumer:   m.GetConsumer(),
			Message:    m.GetMessage(),
		}
		r.Received = fromUnix(m.GetReceivedUnix())
		out = append(out, r)
	}
	return out, nil
}

// Approve grants the waiting connect request session.
func (c *Client) Approve(ctx context.Context, session string) error {
	_, err := c.rpc.Approve(ctx, connect.NewRequest(&controlv1.ApproveRequest{Session: session}))
	return wrap(err)
}

// Decline refuses the waiting connect request session, telling the consumer
// reason.
func (c *Client) Decline(ctx context.Context, session, reason string) error {
	_, err := c.rpc.Decline(ctx, connect.NewRequest(&controlv1.DeclineRequest{Session: session, Reason: reason}))
	return wrap(err)
}

// Forward opens a forward for session, a session of a TCP service the
// daemon holds: a local listener on listen (host:port; port 0 picks a free
// port, and "" means 127.0.0.1 with a free port) whose connections are
// carried to the provider's service.
func (c *Client) Forward(ctx context.Context, session, listen string) (Forward, error) {
	res, err := c.rpc.Forward(ctx, connect.NewRequest(&controlv1.ForwardRequest{Session: session, Listen: listen}))
	if err != nil {
		return Forward{}, wrap(err)
	}
	return forwardFromProto(res.Msg.GetForward()), nil
}

// Forwards lists the daemon's forwards, with their traffic.
func (c *Client) Forwards(ctx context.Context) ([]Forward, error) {
	res, err := c.rpc.Forwards(ctx, connect.NewRequest(&controlv1.ForwardsRequest{}))
	if err != nil {
		return nil, wrap(err)
	}
	out := make([]Forward, 0, len(res.Msg.GetForwards()))
	for _, m := range res.Msg.GetForwards() {
		out = append(out, forwardFromProto(m))
	}
	return out, nil
}

// CloseForward closes the forward of session and its connections. The
// session stays granted.
func (c *Client) CloseForward(ctx context.Context, session string) error {
	_, err := c.rpc.CloseForward(ctx, connect.NewRequest(&controlv1.CloseForwardRequest{Session: session}))
	return wrap(err)
}

// Sessions lists the sessions the daemon granted and those it holds.
func (c *Client) Sessions(ctx context.Context) ([]Session, error) {
	res, err := c.rpc.Sessions(ctx, connect.NewRequest(&controlv1.SessionsRequest{}))
	if err != nil {
		return nil, wrap(err)
	}
	out := make([]Session, 0, len(res.Msg.GetSessions()))
	for _, m := range res.Msg.GetSessions() {
		out = append(out, Session{
			Session:     m.GetSession(),
			ResourceID:  m.GetResourceId(),
			Role:        m.GetRole(),
			Peer:        m.GetPeer(),
			Issued:      fromUnix(m.GetIssuedUnix()),
			Expires:     fromUnix(m.GetExpiresUnix()),
			Revoked:     m.GetRevoked(),
			BytesIn:     m.GetBytesIn(),
			BytesOut:    m.GetBytesOut(),
			TunnelsOpen: m.GetTunnelsOpen(),
		})
	}
	return out, nil
}

// Revoke ends session, a session the daemon granted: its live tunnels close
// and no new one opens.
func (c *Client) Revoke(ctx context.Context, session string) error {
	_, err := c.rpc.Revoke(ctx, connect.NewRequest(&controlv1.RevokeRequest{Session: session}))
	return wrap(err)
}

func forwardFromProto(m *controlv1.ForwardInfo) Forward {
	return Forward{
		Session:    m.GetSession(),
		ResourceID: m.GetResourceId(),
		Provider:   m.GetProvider(),
		Listen:     m.GetListen(),
		BytesIn:    m.GetBytesIn(),
		BytesOut:   m.GetBytesOut(),
		ConnsOpen:  m.GetConnsOpen(),
		ConnsTotal: m.GetConnsTotal(),
		Error:      m.GetError(),
		Active:     m.GetActive(),
		Created:    fromUnix(m.GetCreatedUnix()),
	}
}

// fromUnix converts the wire's Unix seconds to a UTC time, 0 to the zero
// time.
func fromUnix(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

// millis converts a timeout to the wire's milliseconds, rounding a positive
// sub-millisecond timeout up rather than to 0, which means "the default".
func millis(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return max(d.Milliseconds(), 1)
}

// nonNil makes an absent list an empty one, so JSON output has [] rather
// than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
