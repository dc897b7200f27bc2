// Package controltest runs the control API over a stand-in node, for tests of
// the server and of its clients (peerctl and its Go client) that need a
// daemon's answers but not a network.
//
// Backend keeps its state in memory and behaves like a node in the ways a
// client can see: it assigns IDs and bumps seq on advertise, answers
// ErrNotFound and ErrInvalid where a node would, finds among resources the
// test puts on its pretend network, remembers the sessions its connects
// were granted, and keeps forwards for them (pretending to listen: nothing
// is bound, so a test's ports are never taken). Start serves it on a
// temporary unix socket.
package controltest

import (
	"context"
	"fmt"
	"iter"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pullnet/pullnet/internal/control"
	"github.com/pullnet/pullnet/internal/datadir"
	"github.com/pullnet/pullnet/node"
	"github.com/pullnet/pullnet/resource"
)

// Peer IDs for tests: real Ed25519 peer IDs (of fixed keys), so they can be
// put in multiaddrs. PeerID is the stand-in node's own unless a test sets
// another; the others are for its peers and providers.
var (
	PeerID  = mustDecode("12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYbU1Nft9HyQ6X")
	PeerID2 = mustDecode("12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3")
	PeerID3 = mustDecode("12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo")
)

func mustDecode(s string) peer.ID {
	id, err := peer.Decode(s)
	if err != nil {
		panic(err)
	}
	return id
}

// Backend is an in-memory control.Backend. Set its exported fields before
// Start; it is safe for the concurrent calls of a server afterwards.
type Backend struct {
	// Self is the node's peer ID; zero means PeerID.
	Self peer.ID
	// ListenAddrs are the node's addresses, without /p2p/.
	ListenAddrs []ma.Multiaddr
	// Connected are the node's live connections.
	Connected []node.PeerInfo
	// PolicyMode is the mode of the policy Policy reports; empty means
	// open, as for a node.
	PolicyMode string
	// Network holds what Find can find, as the results it would yield.
	Network []node.Result
	// FindFunc, when set, replaces the built-in find over Network.
	FindFunc func(ctx context.Context, query string, opt node.FindOptions) iter.Seq2[node.Result, error]
	// ConnectFunc, when set, replaces the built-in connect, which grants
	// access to any resource in Network. Either way, the sessions granted
	// are held for Forward and Sessions.
	ConnectFunc func(ctx context.Context, id, message string) (node.Grant, error)
	// Reach is what Reachability reports; empty means "unknown".
	Reach string
	// Relays are what RelayAddrs reports.
	Relays []ma.Multiaddr
	// ForwardFunc, when set, replaces the built-in forward. Its forwards are
	// not listed by Forwards.
	ForwardFunc func(ctx context.Context, session, listen string) (node.ForwardInfo, error)
	// LineageFunc, when set, replaces the built-in lineage (see Lineage).
	LineageFunc func(ctx context.Context, id string, depth int) (node.LineageNode, error)
	// DemandReport is what Demand reports (see Demand).
	DemandReport node.DemandReport
	// DoctorFunc, when set, replaces the built-in doctor (see Doctor).
	DoctorFunc func(ctx context.Context) node.DoctorReport
	// WatchFunc, when set, replaces the built-in watch (see Watch).
	WatchFunc func(ctx context.Context, query string, opt node.WatchOptions) iter.Seq2[node.WatchEvent, error]
	// NetworkWants are the others' wants Wants lists (see wants.go).
	NetworkWants []node.WantInfo
	// NetworkRatings are others' ratings Ratings lists besides the node's
	// own (see trust.go).
	NetworkRatings []node.Rating
	// TrustOf is what Trust and TrustScores report per peer.
	TrustOf map[peer.ID]node.TrustScore

	mu        sync.Mutex
	resources []resource.Resource
	requests  []node.Request
	decisions map[string]string // session → "approved" or the decline reason
	handles   int
	sessions  int
	held      []node.Grant       // sessions granted to this node, in order
	granted   []node.SessionInfo // sessions this node granted, in order
	forwards  []node.ForwardInfo // in order of creation
	ports     int                // the last port a forward pretended to pick
	myWants   []node.WantInfo    // this node's wants, in order (wants.go)
	ratings   []node.Rating      // this node's ratings (trust.go)
	anchors   map[peer.ID]float64
}

var _ control.Backend = (*Backend)(nil)

// ID returns Self, or PeerID when Self is unset.
func (b *Backend) ID() peer.ID {
	if b.Self != "" {
		return b.Self
	}
	return PeerID
}

// Addrs returns ListenAddrs.
func (b *Backend) Addrs() []ma.Multiaddr { return b.ListenAddrs }

// Peers returns Connected.
func (b *Backend) Peers() []node.PeerInfo { return b.Connected }

// Policy returns a policy of mode PolicyMode.
func (b *Backend) Policy() node.Policy { return node.Policy{Mode: b.PolicyMode} }

// Resources returns the node's own resources in the order they were first
// advertised.
func (b *Backend) Resources() []resource.Resource {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]resource.Resource, 0, len(b.resources))
	for _, r := range b.resources {
		out = append(out, r.Clone())
	}
	return out
}

// Advertise normalizes and validates r like a node, then stores it as new or
// as the next version of the resource with r's ID.
func (b *Backend) Advertise(ctx context.Context, r resource.Resource) (resource.Resource, error) {
	r = r.Clone()
	r.Normalize()
	if err := r.Validate(); err != nil {
		return resource.Resource{}, fmt.Errorf("%w: %w", node.ErrInvalid, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r.Owner = b.ID().String()
	r.Updated = time.Now().UTC().Truncate(time.Second)
	if r.ID != "" {
		i := slices.IndexFunc(b.resources, func(old resource.Resource) bool { return old.ID == r.ID })
		if i < 0 {
			return resource.Resource{}, fmt.Errorf("resource %s: %w", r.ID, node.ErrNotFound)
		}
		r.Handle = b.resources[i].Handle
		r.Seq = b.resources[i].Seq + 1
		b.resources[i] = r
		return r.Clone(), nil
	}
	if r.Handle == "" {
		b.handles++
		r.Handle = fmt.Sprintf("r%d", b.handles)
	}
	r.ID = resource.NewID(r.Owner, r.Handle)
	if slices.ContainsFunc(b.resources, func(old resource.Resource) bool { return old.ID == r.ID }) {
		return resource.Resource{}, fmt.Errorf("%w: handle %q is taken", node.ErrInvalid, r.Handle)
	}
	r.Seq = 1
	b.resources = append(b.resources, r)
	return r.Clone(), nil
}

// Withdraw forgets one of the node's resources.
func (b *Backend) Withdraw(ctx context.Context, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := slices.IndexFunc(b.resources, func(r resource.Resource) bool { return r.ID == id })
	if i < 0 {
		return fmt.Errorf("resource %s: %w", id, node.ErrNotFound)
	}
	b.resources = slices.Delete(b.resources, i, i+1)
	return nil
}

// Find calls FindFunc when it is set. Otherwise it yields the results in
// Network that match every term of query: kind:K, tag:T, or a word of the
// name or description. An unterminated quote is a syntax error.
func (b *Backend) Find(ctx context.Context, query string, opt node.FindOptions) iter.Seq2[node.Result, error] {
	if b.FindFunc != nil {
		return b.FindFunc(ctx, query, opt)
	}
	return func(yield func(node.Result, error) bool) {
		if strings.Count(query, `"`)%2 != 0 {
			yield(node.Result{}, fmt.Errorf("%w: query %q: unterminated quote", node.ErrInvalid, query))
			return
		}
		limit := opt.Limit
		if limit == 0 {
			limit = node.DefaultFindLimit
		}
		n := 0
		for _, res := range b.Network {
			if !matches(res.Resource, query) {
				continue
			}
			if err := ctx.Err(); err != nil {
				yield(node.Result{}, err)
				return
			}
			if !yield(res, nil) {
				return
			}
			if n++; n >= limit {
				return
			}
		}
	}
}

func matches(r resource.Resource, query string) bool {
	for _, term := range strings.Fields(strings.ToLower(strings.ReplaceAll(query, `"`, " "))) {
		var ok bool
		switch {
		case strings.HasPrefix(term, "kind:"):
			ok = r.Kind == strings.TrimPrefix(term, "kind:")
		case strings.HasPrefix(term, "tag:"):
			ok = slices.Contains(r.Tags, strings.TrimPrefix(term, "tag:"))
		default:
			ok = strings.Contains(strings.ToLower(r.Name+" "+r.Description), term)
		}
		if !ok {
			return false
		}
	}
	return true
}

// Connect calls ConnectFunc when it is set. Otherwise it grants a new
// session, for an hour, for any resource in Network, and answers
// ErrNotFound for others. A granted session is held, as by a node.
func (b *Backend) Connect(ctx context.Context, id, message string) (node.Grant, error) {
	g, err := b.connect(ctx, id, message)
	if err == nil && g.Granted {
		b.mu.Lock()
		b.held = append(b.held, g)
		b.mu.Unlock()
	}
	return g, err
}

func (b *Backend) connect(ctx context.Context, id, message string) (node.Grant, error) {
	if b.ConnectFunc != nil {
		return b.ConnectFunc(ctx, id, message)
	}
	for _, res := range b.Network {
		if res.Resource.ID != id {
			continue
		}
		b.mu.Lock()
		b.sessions++
		session := fmt.Sprintf("session-%d", b.sessions)
		b.mu.Unlock()
		return node.Grant{
			Granted:    true,
			Session:    session,
			Access:     res.Resource.Access,
			Provider:   res.Provider,
			ResourceID: id,
			Expires:    time.Now().Add(time.Hour).UTC().Truncate(time.Second),
		}, nil
	}
	return node.Grant{}, fmt.Errorf("resource %s: %w", id, node.ErrNotFound)
}

// Reachability returns Reach, or "unknown" when it is unset.
func (b *Backend) Reachability() string {
	if b.Reach == "" {
		return "unknown"
	}
	return b.Reach
}

// RelayAddrs returns Relays.
func (b *Backend) RelayAddrs() []ma.Multiaddr { return b.Relays }

// Forward calls ForwardFunc when it is set. Otherwise it checks its
// arguments like a node — a held session of a TCP service, a host:port to
// listen on, one forward per session — and lists a forward that pretends
// to listen there; port 0 becomes a made-up port.
func (b *Backend) Forward(ctx context.Context, session, listen string) (node.ForwardInfo, error) {
	if b.ForwardFunc != nil {
		return b.ForwardFunc(ctx, session, listen)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	i := slices.IndexFunc(b.held, func(g node.Grant) bool { return g.Session == session })
	if i < 0 {
		return node.ForwardInfo{}, fmt.Errorf("forward: %w: this node holds no session %s", node.ErrNotFound, session)
	}
	g := b.held[i]
	if g.Access.Type != resource.AccessTCP {
		return node.ForwardInfo{}, fmt.Errorf("forward: %w: session %s is for a %q resource, not a TCP service", node.ErrInvalid, session, g.Access.Type)
	}
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return node.ForwardInfo{}, fmt.Errorf("forward: %w: listen address %q: want host:port", node.ErrInvalid, listen)
	}
	if j := slices.IndexFunc(b.forwards, func(f node.ForwardInfo) bool { return f.Session == session }); j >= 0 && b.forwards[j].Active {
		return node.ForwardInfo{}, fmt.Errorf("forward: session %s already has a forward on %s", session, b.forwards[j].Listen)
	}
	if port == "0" {
		b.ports++
		port = strconv.Itoa(40000 + b.ports)
	}
	f := node.ForwardInfo{
		Session:    session,
		ResourceID: g.ResourceID,
		Provider:   g.Provider.String(),
		Listen:     net.JoinHostPort(host, port),
		Active:     true,
		Created:    time.Now().UTC().Truncate(time.Second),
	}
	b.putForward(f)
	return f, nil
}

// AddForward lists f as a forward of the node, replacing the forward of
// the same session, so a test can show traffic, errors and forwards that
// were not restored.
func (b *Backend) AddForward(f node.ForwardInfo) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.putForward(f)
}

func (b *Backend) putForward(f node.ForwardInfo) {
	if i := slices.IndexFunc(b.forwards, func(old node.ForwardInfo) bool { return old.Session == f.Session }); i >= 0 {
		b.forwards[i] = f
		return
	}
	b.forwards = append(b.forwards, f)
}

// Forwards lists the node's forwards in the order they were opened.
func (b *Backend) Forwards() []node.ForwardInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.forwards)
}

// CloseForward forgets a session's forward.
func (b *Backend) CloseForward(ctx context.Context, session string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := slices.IndexFunc(b.forwards, func(f node.ForwardInfo) bool { return f.Session == session })
	if i < 0 {
		return fmt.Errorf("close forward: %w: no forward for session %s", node.ErrNotFound, session)
	}
	b.forwards = slices.Delete(b.forwards, i, i+1)
	return nil
}

// AddSession records a session the node granted, as a provider; its role
// is "provider" unless s says otherwise.
func (b *Backend) AddSession(s node.SessionInfo) {
	if s.Role == "" {
		s.Role = "provider"
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.granted = append(b.granted, s)
}

// Sessions lists the sessions the node granted (see AddSession), then
// those it holds, with the traffic of their forwards.
func (b *Backend) Sessions(ctx context.Context) ([]node.SessionInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := slices.Clone(b.granted)
	for _, g := range b.held {
		s := node.SessionInfo{Session: g.Session, ResourceID: g.ResourceID, Role: "consumer", Peer: g.Provider, Expires: g.Expires}
		if i := slices.IndexFunc(b.forwards, func(f node.ForwardInfo) bool { return f.Session == g.Session }); i >= 0 {
			f := b.forwards[i]
			s.BytesIn, s.BytesOut, s.TunnelsOpen = f.BytesIn, f.BytesOut, f.ConnsOpen
		}
		out = append(out, s)
	}
	return out, nil
}

// Revoke marks a session the node granted as revoked.
func (b *Backend) Revoke(ctx context.Context, session string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := slices.IndexFunc(b.granted, func(s node.SessionInfo) bool { return s.Session == session && s.Role == "provider" })
	if i < 0 {
		return fmt.Errorf("revoke: %w: no session granted with that ID: %s", node.ErrNotFound, session)
	}
	b.granted[i].Revoked = true
	b.granted[i].TunnelsOpen = 0
	return nil
}

// AddRequest queues an incoming connect request, as a node under the manual
// policy does.
func (b *Backend) AddRequest(r node.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.requests = append(b.requests, r)
}

// Requests returns the connect requests waiting for a decision.
func (b *Backend) Requests() []node.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.requests)
}

// Approve grants a waiting request.
func (b *Backend) Approve(session string) error { return b.decide(session, "approved") }

// Decline refuses a waiting request.
func (b *Backend) Decline(session, reason string) error {
	return b.decide(session, "declined: "+reason)
}

// Decision reports what became of a request: "approved", "declined:
// REASON", or "" while it waits or if there was none.
func (b *Backend) Decision(session string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.decisions[session]
}

func (b *Backend) decide(session, decision string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := slices.IndexFunc(b.requests, func(r node.Request) bool { return r.Session == session })
	if i < 0 {
		return fmt.Errorf("request %s: %w", session, node.ErrNotFound)
	}
	b.requests = slices.Delete(b.requests, i, i+1)
	if b.decisions == nil {
		b.decisions = map[string]string{}
	}
	b.decisions[session] = decision
	return nil
}

// Start serves the control API over b on a unix socket in a new temporary
// directory, named as in a data directory, and returns the socket's path
// once it accepts connections. The
// server stops when the test ends, and the test fails if it did not stop
// cleanly.
func Start(t testing.TB, b control.Backend, opts control.Options) (socketPath string) {
	t.Helper()
	// Not t.TempDir: its path includes the test's name and can exceed the
	// 108 bytes a unix socket path may have.
	dir, err := os.MkdirTemp("", "pn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return StartAt(t, filepath.Join(dir, datadir.SocketFile), b, opts)
}

// StartAt is Start with the socket at a given path.
func StartAt(t testing.TB, socketPath string, b control.Backend, opts control.Options) string {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts = withWatches(t, b, opts)
	_, h := control.NewHandler(b, opts)
	ctx, cancel := context.WithCancel(context.Background())
	var serveErr error
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		serveErr = control.Serve(ctx, socketPath, h, opts.Logger)
	}()
	t.Cleanup(func() {
		cancel()
		<-stopped
		if serveErr != nil {
			t.Errorf("control.Serve: %v", serveErr)
		}
	})

	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.Dial("unix", socketPath)
		if err == nil {
			conn.Close()
			return socketPath
		}
		select {
		case <-stopped:
			t.Fatalf("control.Serve stopped before accepting a connection")
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("control socket %s not accepting after 10s: %v", socketPath, err)
		}
	}
}
