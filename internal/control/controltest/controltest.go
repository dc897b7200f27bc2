// Package controltest runs the control API over a stand-in node, for tests of
// the server and of its clients (peerctl and its Go client) that need a
// daemon's answers but not a network.
//
// Backend keeps its state in memory and behaves like a node in the ways a
// client can see: it assigns IDs and bumps seq on advertise, answers
// ErrNotFound and ErrInvalid where a node would, and finds among resources
// the test puts on its pretend network. Start serves it on a temporary unix
// socket.
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
	// access to any resource in Network.
	ConnectFunc func(ctx context.Context, id, message string) (node.Grant, error)

	mu        sync.Mutex
	resources []resource.Resource
	requests  []node.Request
	decisions map[string]string // session → "approved" or the decline reason
	handles   int
	sessions  int
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
// session for any resource in Network, and answers ErrNotFound for others.
func (b *Backend) Connect(ctx context.Context, id, message string) (node.Grant, error) {
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
		}, nil
	}
	return node.Grant{}, fmt.Errorf("resource %s: %w", id, node.ErrNotFound)
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
