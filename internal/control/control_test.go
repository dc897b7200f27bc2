package control_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"

	"github.com/pullnet/pullnet/internal/control"
	"github.com/pullnet/pullnet/internal/control/controltest"
	"github.com/pullnet/pullnet/node"
	controlv1 "github.com/pullnet/pullnet/proto/gen/pullnet/control/v1"
	"github.com/pullnet/pullnet/proto/gen/pullnet/control/v1/controlv1connect"
	"github.com/pullnet/pullnet/resource"
)

// unixTransport returns an HTTP transport that dials socketPath whatever the
// URL says. With h2c it speaks only unencrypted HTTP/2, as gRPC clients do.
func unixTransport(socketPath string, h2c bool) *http.Transport {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socketPath)
		},
	}
	if h2c {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = &p
	}
	return tr
}

// newClient returns a generated client of the API on socketPath, speaking
// the Connect protocol over HTTP/1.1, or gRPC over HTTP/2 when grpc is set.
func newClient(t *testing.T, socketPath string, grpc bool) controlv1connect.ControlServiceClient {
	t.Helper()
	tr := unixTransport(socketPath, grpc)
	t.Cleanup(tr.CloseIdleConnections)
	var opts []connect.ClientOption
	if grpc {
		opts = append(opts, connect.WithGRPC())
	}
	return controlv1connect.NewControlServiceClient(&http.Client{Transport: tr}, "http://pulld", opts...)
}

func mustAddr(t *testing.T, s string) ma.Multiaddr {
	t.Helper()
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func result(kind, name string, provider string) node.Result {
	return node.Result{
		Resource: resource.Resource{
			ID:    resource.NewID(provider, name),
			Owner: provider,
			Kind:  kind,
			Name:  name,
		},
		Provider: controltest.PeerID2,
		Elapsed:  1500 * time.Microsecond,
		Score:    0.5,
	}
}

func wantCode(t *testing.T, err error, code connect.Code, msgPart string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error; want %v", code)
	}
	if got := connect.CodeOf(err); got != code {
		t.Fatalf("got %v (%v); want %v", got, err, code)
	}
	var ce *connect.Error
	if errors.As(err, &ce) && !strings.Contains(ce.Message(), msgPart) {
		t.Fatalf("message %q does not mention %q", ce.Message(), msgPart)
	}
}

func TestStatus(t *testing.T) {
	b := &controltest.Backend{
		ListenAddrs: []ma.Multiaddr{
			mustAddr(t, "/ip4/127.0.0.1/tcp/4001"),
			mustAddr(t, "/ip4/127.0.0.1/udp/4001/quic-v1/p2p/"+controltest.PeerID.String()),
		},
		Connected:  []node.PeerInfo{{ID: controltest.PeerID2}},
		PolicyMode: node.PolicyManual,
		Reach:      "private",
		Relays:     []ma.Multiaddr{mustAddr(t, "/ip4/10.0.0.9/tcp/4001/p2p/"+controltest.PeerID3.String()+"/p2p-circuit/p2p/"+controltest.PeerID.String())},
	}
	if _, err := b.Advertise(context.Background(), resource.Resource{Kind: "skill", Name: "go reviews"}); err != nil {
		t.Fatal(err)
	}
	sock := controltest.Start(t, b, control.Options{DataDir: "/data", Version: "v1.2.3"})
	res, err := newClient(t, sock, false).Status(context.Background(), connect.NewRequest(&controlv1.StatusRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	id := controltest.PeerID.String()
	want := &controlv1.StatusResponse{
		PeerId: id,
		Addrs: []string{
			"/ip4/127.0.0.1/tcp/4001/p2p/" + id,
			"/ip4/127.0.0.1/udp/4001/quic-v1/p2p/" + id,
		},
		Peers:     1,
		Resources: 1,
		Version:   "v1.2.3",
		DataDir:   "/data",
		Policy:    node.PolicyManual,

		Reachability: "private",
		RelayAddrs:   []string{"/ip4/10.0.0.9/tcp/4001/p2p/" + controltest.PeerID3.String() + "/p2p-circuit/p2p/" + id},
	}
	if got := res.Msg; !proto.Equal(got, want) {
		t.Errorf("Status:\n got %v\nwant %v", got, want)
	}
}

func TestPeers(t *testing.T) {
	b := &controltest.Backend{Connected: []node.PeerInfo{
		{ID: controltest.PeerID2, Addrs: []ma.Multiaddr{mustAddr(t, "/ip4/10.0.0.2/tcp/4001")}, Direction: network.DirOutbound, Latency: 2500 * time.Microsecond, Transport: "tcp"},
		{ID: controltest.PeerID3, Direction: network.DirInbound, Relayed: true, Transport: "relay"},
	}}
	sock := controltest.Start(t, b, control.Options{})
	res, err := newClient(t, sock, false).Peers(context.Background(), connect.NewRequest(&controlv1.PeersRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	got := res.Msg.GetPeers()
	if len(got) != 2 {
		t.Fatalf("got %d peers; want 2", len(got))
	}
	if p := got[0]; p.GetPeerId() != controltest.PeerID2.String() || p.GetDirection() != "outbound" ||
		p.GetLatencyUs() != 2500 || len(p.GetAddrs()) != 1 || p.GetAddrs()[0] != "/ip4/10.0.0.2/tcp/4001" ||
		p.GetRelayed() || p.GetTransport() != "tcp" {
		t.Errorf("peer 0 = %v", p)
	}
	if p := got[1]; p.GetDirection() != "inbound" || p.GetLatencyUs() != 0 || !p.GetRelayed() || p.GetTransport() != "relay" {
		t.Errorf("peer 1 = %v", p)
	}
}

func TestAdvertiseListWithdraw(t *testing.T) {
	sock := controltest.Start(t, &controltest.Backend{}, control.Options{})
	c := newClient(t, sock, false)
	ctx := context.Background()

	expires := time.Now().Add(time.Hour).Truncate(time.Second)
	adv, err := c.Advertise(ctx, connect.NewRequest(&controlv1.AdvertiseRequest{Resource: &controlv1.Resource{
		Kind:        "Compute",
		Name:        "A100 box",
		Tags:        []string{"GPU"},
		Attrs:       map[string]string{"gpu.count": "2"},
		Access:      &controlv1.Access{Type: "tcp", Value: "127.0.0.1:8080"},
		ExpiresUnix: expires.Unix(),
	}}))
	if err != nil {
		t.Fatal(err)
	}
	if adv.Msg.GetId() == "" || adv.Msg.GetSeq() != 1 {
		t.Fatalf("Advertise = %v; want an ID and seq 1", adv.Msg)
	}

	list, err := c.ListResources(ctx, connect.NewRequest(&controlv1.ListResourcesRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(list.Msg.GetResources()); n != 1 {
		t.Fatalf("ListResources: %d resources; want 1", n)
	}
	r := list.Msg.GetResources()[0]
	if r.GetId() != adv.Msg.GetId() || r.GetKind() != "compute" || r.GetTags()[0] != "gpu" ||
		r.GetAttrs()["gpu.count"] != "2" || r.GetAccess().GetValue() != "127.0.0.1:8080" ||
		r.GetExpiresUnix() != expires.Unix() || r.GetOwner() != controltest.PeerID.String() {
		t.Errorf("listed %v", r)
	}

	// Editing keeps the ID and bumps seq.
	edit, err := c.Advertise(ctx, connect.NewRequest(&controlv1.AdvertiseRequest{Resource: &controlv1.Resource{
		Id: adv.Msg.GetId(), Kind: "compute", Name: "A100 box, now with more RAM",
	}}))
	if err != nil {
		t.Fatal(err)
	}
	if edit.Msg.GetId() != adv.Msg.GetId() || edit.Msg.GetSeq() != 2 {
		t.Errorf("edit = %v; want id %s seq 2", edit.Msg, adv.Msg.GetId())
	}

	if _, err := c.Withdraw(ctx, connect.NewRequest(&controlv1.WithdrawRequest{Id: adv.Msg.GetId()})); err != nil {
		t.Fatal(err)
	}
	_, err = c.Withdraw(ctx, connect.NewRequest(&controlv1.WithdrawRequest{Id: adv.Msg.GetId()}))
	wantCode(t, err, connect.CodeNotFound, adv.Msg.GetId())
}

// TestValidation checks that every call with a required field left empty is
// refused as InvalidArgument, naming the field, before it reaches the node.
func TestValidation(t *testing.T) {
	sock := controltest.Start(t, &panickyBackend{}, control.Options{})
	c := newClient(t, sock, false)
	ctx := context.Background()
	findErr := func(req *controlv1.FindRequest) error {
		s, err := c.Find(ctx, connect.NewRequest(req))
		if err != nil {
			return err
		}
		defer s.Close()
		for s.Receive() {
		}
		return s.Err()
	}
	for _, tc := range []struct {
		name string
		call func() error
		want string
	}{
		{"advertise without resource", func() error {
			_, err := c.Advertise(ctx, connect.NewRequest(&controlv1.AdvertiseRequest{}))
			return err
		}, "resource is required"},
		{"advertise without kind", func() error {
			_, err := c.Advertise(ctx, connect.NewRequest(&controlv1.AdvertiseRequest{Resource: &controlv1.Resource{Name: "x"}}))
			return err
		}, "kind is required"},
		{"advertise with blank name", func() error {
			_, err := c.Advertise(ctx, connect.NewRequest(&controlv1.AdvertiseRequest{Resource: &controlv1.Resource{Kind: "skill", Name: "  "}}))
			return err
		}, "name is required"},
		{"withdraw without id", func() error {
			_, err := c.Withdraw(ctx, connect.NewRequest(&controlv1.WithdrawRequest{}))
			return err
		}, "id is required"},
		{"find without query", func() error {
			return findErr(&controlv1.FindRequest{Query: " "})
		}, "query is required"},
		{"find with negative timeout", func() error {
			return findErr(&controlv1.FindRequest{Query: "kind:x", TimeoutMs: -1})
		}, "timeout_ms"},
		{"connect without id", func() error {
			_, err := c.Connect(ctx, connect.NewRequest(&controlv1.ConnectRequest{}))
			return err
		}, "id is required"},
		{"connect with negative timeout", func() error {
			_, err := c.Connect(ctx, connect.NewRequest(&controlv1.ConnectRequest{Id: "x", TimeoutMs: -5}))
			return err
		}, "timeout_ms"},
		{"approve without session", func() error {
			_, err := c.Approve(ctx, connect.NewRequest(&controlv1.ApproveRequest{}))
			return err
		}, "session is required"},
		{"decline without session", func() error {
			_, err := c.Decline(ctx, connect.NewRequest(&controlv1.DeclineRequest{Reason: "no"}))
			return err
		}, "session is required"},
		{"connect with a forward that is not host:port", func() error {
			_, err := c.Connect(ctx, connect.NewRequest(&controlv1.ConnectRequest{Id: "x", Forward: "9000"}))
			return err
		}, `forward "9000": want host:port`},
		{"connect with a forward port out of range", func() error {
			_, err := c.Connect(ctx, connect.NewRequest(&controlv1.ConnectRequest{Id: "x", Forward: "127.0.0.1:65536"}))
			return err
		}, `port "65536" is not a number from 0 to 65535`},
		{"forward without session", func() error {
			_, err := c.Forward(ctx, connect.NewRequest(&controlv1.ForwardRequest{Listen: "127.0.0.1:0"}))
			return err
		}, "session is required"},
		{"forward with a named port", func() error {
			_, err := c.Forward(ctx, connect.NewRequest(&controlv1.ForwardRequest{Session: "s", Listen: "localhost:http"}))
			return err
		}, `listen "localhost:http": port "http" is not a number`},
		{"forward with a bad address", func() error {
			_, err := c.Forward(ctx, connect.NewRequest(&controlv1.ForwardRequest{Session: "s", Listen: "::1"}))
			return err
		}, `listen "::1": want host:port`},
		{"close forward without session", func() error {
			_, err := c.CloseForward(ctx, connect.NewRequest(&controlv1.CloseForwardRequest{Session: " "}))
			return err
		}, "session is required"},
		{"revoke without session", func() error {
			_, err := c.Revoke(ctx, connect.NewRequest(&controlv1.RevokeRequest{}))
			return err
		}, "session is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, tc.call(), connect.CodeInvalidArgument, tc.want)
		})
	}
}

// panickyBackend fails the test's calls loudly if validation lets one
// through: every method panics, which the server turns into Internal.
type panickyBackend struct{ controltest.Backend }

func (*panickyBackend) Advertise(context.Context, resource.Resource) (resource.Resource, error) {
	panic("Advertise reached the backend")
}
func (*panickyBackend) Withdraw(context.Context, string) error { panic("Withdraw reached the backend") }
func (*panickyBackend) Find(context.Context, string, node.FindOptions) iter.Seq2[node.Result, error] {
	panic("Find reached the backend")
}
func (*panickyBackend) Connect(context.Context, string, string) (node.Grant, error) {
	panic("Connect reached the backend")
}
func (*panickyBackend) Approve(string) error         { panic("Approve reached the backend") }
func (*panickyBackend) Decline(string, string) error { panic("Decline reached the backend") }
func (*panickyBackend) Forward(context.Context, string, string) (node.ForwardInfo, error) {
	panic("Forward reached the backend")
}
func (*panickyBackend) CloseForward(context.Context, string) error {
	panic("CloseForward reached the backend")
}
func (*panickyBackend) Revoke(context.Context, string) error { panic("Revoke reached the backend") }

func TestPanicIsInternal(t *testing.T) {
	sock := controltest.Start(t, &panickyBackend{}, control.Options{})
	_, err := newClient(t, sock, false).Approve(context.Background(), connect.NewRequest(&controlv1.ApproveRequest{Session: "s"}))
	wantCode(t, err, connect.CodeInternal, "internal error")
}

// errBackend answers Withdraw with a fixed error.
type errBackend struct {
	controltest.Backend
	err error
}

func (b *errBackend) Withdraw(context.Context, string) error { return b.err }

func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code connect.Code
	}{
		{fmt.Errorf("resource x: %w", node.ErrNotFound), connect.CodeNotFound},
		{fmt.Errorf("%w: bad query: unexpected ')'", node.ErrInvalid), connect.CodeInvalidArgument},
		{fmt.Errorf("asking provider: %w", context.DeadlineExceeded), connect.CodeDeadlineExceeded},
		{node.ErrClosed, connect.CodeUnavailable},
		{errors.New("disk on fire"), connect.CodeInternal},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			sock := controltest.Start(t, &errBackend{err: tc.err}, control.Options{})
			_, err := newClient(t, sock, false).Withdraw(context.Background(), connect.NewRequest(&controlv1.WithdrawRequest{Id: "x"}))
			wantCode(t, err, tc.code, tc.err.Error())
		})
	}
}

func findAll(t *testing.T, c controlv1connect.ControlServiceClient, req *controlv1.FindRequest) ([]*controlv1.FindResponse, error) {
	t.Helper()
	s, err := c.Find(context.Background(), connect.NewRequest(req))
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var out []*controlv1.FindResponse
	for s.Receive() {
		out = append(out, s.Msg())
	}
	return out, s.Err()
}

func TestFind(t *testing.T) {
	b := &controltest.Backend{Network: []node.Result{
		result("compute", "A100 box", controltest.PeerID2.String()),
		result("dataset", "weather 2020", controltest.PeerID2.String()),
		result("compute", "TPU pod", controltest.PeerID2.String()),
	}}
	b.Network[0].Addrs = []ma.Multiaddr{mustAddr(t, "/ip4/10.0.0.2/tcp/4001")}
	sock := controltest.Start(t, b, control.Options{})
	c := newClient(t, sock, false)

	got, err := findAll(t, c, &controlv1.FindRequest{Query: "kind:compute"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d results; want 2", len(got))
	}
	r := got[0]
	if r.GetId() != b.Network[0].Resource.ID || r.GetProvider() != controltest.PeerID2.String() ||
		r.GetResource().GetName() != "A100 box" || r.GetElapsedUs() != 1500 || r.GetScore() != 0.5 ||
		len(r.GetAddrs()) != 1 || r.GetAddrs()[0] != "/ip4/10.0.0.2/tcp/4001" {
		t.Errorf("result 0 = %v", r)
	}

	got, err = findAll(t, c, &controlv1.FindRequest{Query: "kind:compute", Limit: 1})
	if err != nil || len(got) != 1 {
		t.Errorf("limit 1: got %d results, err %v; want 1 result", len(got), err)
	}

	_, err = findAll(t, c, &controlv1.FindRequest{Query: `"unterminated`})
	wantCode(t, err, connect.CodeInvalidArgument, "unterminated")
}

// TestFindLimitEnforced checks that the server stops at the limit even when
// the backend would go on.
func TestFindLimitEnforced(t *testing.T) {
	b := &controltest.Backend{FindFunc: func(ctx context.Context, _ string, _ node.FindOptions) iter.Seq2[node.Result, error] {
		return func(yield func(node.Result, error) bool) {
			for i := 0; ; i++ {
				if !yield(result("skill", fmt.Sprint("r", i), controltest.PeerID2.String()), nil) {
					return
				}
			}
		}
	}}
	sock := controltest.Start(t, b, control.Options{})
	got, err := findAll(t, newClient(t, sock, false), &controlv1.FindRequest{Query: "x", Limit: 3})
	if err != nil || len(got) != 3 {
		t.Errorf("got %d results, err %v; want 3 results", len(got), err)
	}
}

// TestFindStreams checks that a result reaches the client while the find is
// still running, and that a find that runs into its own timeout ends
// normally with what it found.
func TestFindStreams(t *testing.T) {
	b := &controltest.Backend{FindFunc: func(ctx context.Context, _ string, _ node.FindOptions) iter.Seq2[node.Result, error] {
		return func(yield func(node.Result, error) bool) {
			if !yield(result("skill", "first", controltest.PeerID2.String()), nil) {
				return
			}
			<-ctx.Done() // the rest of the network never answers
			yield(node.Result{}, ctx.Err())
		}
	}}
	sock := controltest.Start(t, b, control.Options{})
	for _, grpc := range []bool{false, true} {
		t.Run(map[bool]string{false: "connect", true: "grpc"}[grpc], func(t *testing.T) {
			c := newClient(t, sock, grpc)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			// A timeout far beyond the test's: only streaming can deliver
			// the first result in time.
			s, err := c.Find(ctx, connect.NewRequest(&controlv1.FindRequest{Query: "x", TimeoutMs: time.Hour.Milliseconds()}))
			if err != nil {
				t.Fatal(err)
			}
			if !s.Receive() {
				t.Fatalf("no first result: %v", s.Err())
			}
			if s.Msg().GetResource().GetName() != "first" {
				t.Errorf("first result = %v", s.Msg())
			}
			cancel()
			s.Close()

			got, err := findAll(t, c, &controlv1.FindRequest{Query: "x", TimeoutMs: 50})
			if err != nil || len(got) != 1 {
				t.Errorf("find that timed out: got %d results, err %v; want 1 result and no error", len(got), err)
			}
		})
	}
}

// deadlineBackend records the deadline of the context its Find and Connect
// are called with.
type deadlineBackend struct {
	controltest.Backend
	deadline chan time.Duration
}

func (b *deadlineBackend) Find(ctx context.Context, _ string, _ node.FindOptions) iter.Seq2[node.Result, error] {
	d, _ := ctx.Deadline()
	b.deadline <- time.Until(d)
	return func(func(node.Result, error) bool) {}
}

func (b *deadlineBackend) Connect(ctx context.Context, _, _ string) (node.Grant, error) {
	d, _ := ctx.Deadline()
	b.deadline <- time.Until(d)
	return node.Grant{Granted: true}, nil
}

func TestTimeouts(t *testing.T) {
	b := &deadlineBackend{deadline: make(chan time.Duration, 1)}
	sock := controltest.Start(t, b, control.Options{})
	c := newClient(t, sock, false)
	ctx := context.Background()
	check := func(name string, want time.Duration) {
		t.Helper()
		got := <-b.deadline
		// The deadline was set a moment before it was measured.
		if got > want || got < want-5*time.Second {
			t.Errorf("%s: backend saw %v left; want about %v", name, got, want)
		}
	}
	for _, tc := range []struct {
		ms   int64
		want time.Duration
	}{
		{0, control.DefaultFindTimeout},
		{2000, 2 * time.Second},
		{time.Hour.Milliseconds(), control.MaxFindTimeout},
	} {
		if _, err := findAll(t, c, &controlv1.FindRequest{Query: "x", TimeoutMs: tc.ms}); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("find timeout_ms %d", tc.ms), tc.want)
	}
	for _, tc := range []struct {
		ms   int64
		want time.Duration
	}{
		{0, control.DefaultConnectTimeout},
		{time.Hour.Milliseconds(), control.MaxConnectTimeout},
	} {
		if _, err := c.Connect(ctx, connect.NewRequest(&controlv1.ConnectRequest{Id: "x", TimeoutMs: tc.ms})); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("connect timeout_ms %d", tc.ms), tc.want)
	}
}

func TestConnectTimeout(t *testing.T) {
	b := &controltest.Backend{ConnectFunc: func(ctx context.Context, _, _ string) (node.Grant, error) {
		<-ctx.Done() // the provider never answers
		return node.Grant{}, fmt.Errorf("asking provider: %w", ctx.Err())
	}}
	sock := controltest.Start(t, b, control.Options{})
	_, err := newClient(t, sock, false).Connect(context.Background(), connect.NewRequest(&controlv1.ConnectRequest{Id: "rid", TimeoutMs: 50}))
	wantCode(t, err, connect.CodeDeadlineExceeded, "no answer from the provider of rid within 50ms")
}

func TestConnectAndRequests(t *testing.T) {
	r := result("service", "echo", controltest.PeerID2.String())
	r.Resource.Access = resource.Access{Type: resource.AccessTCP, Value: "127.0.0.1:7"}
	b := &controltest.Backend{Network: []node.Result{r}}
	received := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	b.AddRequest(node.Request{Session: "s1", ResourceID: "rid", Consumer: controltest.PeerID3, Message: "hi", Received: received})
	b.AddRequest(node.Request{Session: "s2", ResourceID: "rid", Consumer: controltest.PeerID3})
	sock := controltest.Start(t, b, control.Options{})
	c := newClient(t, sock, false)
	ctx := context.Background()

	g, err := c.Connect(ctx, connect.NewRequest(&controlv1.ConnectRequest{Id: r.Resource.ID, Message: "please"}))
	if err != nil {
		t.Fatal(err)
	}
	if m := g.Msg; !m.GetGranted() || m.GetSession() == "" || m.GetAccess().GetType() != "tcp" ||
		m.GetProvider() != controltest.PeerID2.String() || m.GetResourceId() != r.Resource.ID {
		t.Errorf("Connect = %v", m)
	}
	_, err = c.Connect(ctx, connect.NewRequest(&controlv1.ConnectRequest{Id: "nope"}))
	wantCode(t, err, connect.CodeNotFound, "nope")

	reqs, err := c.ListRequests(ctx, connect.NewRequest(&controlv1.ListRequestsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if got := reqs.Msg.GetRequests(); len(got) != 2 || got[0].GetSession() != "s1" || got[0].GetMessage() != "hi" ||
		got[0].GetConsumer() != controltest.PeerID3.String() || got[0].GetReceivedUnix() != received.Unix() {
		t.Errorf("ListRequests = %v", got)
	}
	if _, err := c.Approve(ctx, connect.NewRequest(&controlv1.ApproveRequest{Session: "s1"})); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decline(ctx, connect.NewRequest(&controlv1.DeclineRequest{Session: "s2", Reason: "busy"})); err != nil {
		t.Fatal(err)
	}
	if b.Decision("s1") != "approved" || b.Decision("s2") != "declined: busy" {
		t.Errorf("decisions: s1 %q, s2 %q", b.Decision("s1"), b.Decision("s2"))
	}
	_, err = c.Approve(ctx, connect.NewRequest(&controlv1.ApproveRequest{Session: "s1"}))
	wantCode(t, err, connect.CodeNotFound, "s1")
}

// TestProtocols checks that the socket answers gRPC (HTTP/2 without TLS) and
// Connect's JSON (plain HTTP/1.1), which is what curl and scripts use.
func TestProtocols(t *testing.T) {
	sock := controltest.Start(t, &controltest.Backend{}, control.Options{Version: "v9"})

	t.Run("grpc", func(t *testing.T) {
		res, err := newClient(t, sock, true).Status(context.Background(), connect.NewRequest(&controlv1.StatusRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		if res.Msg.GetVersion() != "v9" {
			t.Errorf("version %q; want v9", res.Msg.GetVersion())
		}
	})

	t.Run("connect json", func(t *testing.T) {
		tr := unixTransport(sock, false)
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr}
		post := func(procedure, body string) (int, string) {
			t.Helper()
			res, err := hc.Post("http://pulld"+procedure, "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if res.ProtoMajor != 1 {
				t.Errorf("answered over %s; want HTTP/1.1", res.Proto)
			}
			return res.StatusCode, string(b)
		}
		code, body := post(controlv1connect.ControlServiceStatusProcedure, "{}")
		if code != http.StatusOK || !strings.Contains(body, `"peerId":"`+controltest.PeerID.String()+`"`) || !strings.Contains(body, `"version":"v9"`) {
			t.Errorf("Status: %d %s", code, body)
		}
		code, body = post(controlv1connect.ControlServiceWithdrawProcedure, "{}")
		if code != http.StatusBadRequest || !strings.Contains(body, `"code":"invalid_argument"`) || !strings.Contains(body, "id is required") {
			t.Errorf("Withdraw without id: %d %s", code, body)
		}
	})
}

func TestRealNode(t *testing.T) {
	ctx := context.Background()
	n, err := node.New(ctx, node.Config{ListenAddrs: []ma.Multiaddr{mustAddr(t, "/ip4/127.0.0.1/tcp/0")}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()

	sock := controltest.Start(t, n, control.Options{Version: "test"})
	c := newClient(t, sock, false)
	st, err := c.Status(ctx, connect.NewRequest(&controlv1.StatusRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if st.Msg.GetPeerId() != n.ID().String() {
		t.Errorf("peer id %q; want %q", st.Msg.GetPeerId(), n.ID())
	}
	for _, a := range st.Msg.GetAddrs() {
		if !strings.HasSuffix(a, "/p2p/"+n.ID().String()) {
			t.Errorf("address %s does not end in /p2p/%s", a, n.ID())
		}
	}

	adv, err := c.Advertise(ctx, connect.NewRequest(&controlv1.AdvertiseRequest{Resource: &controlv1.Resource{Kind: "skill", Name: "go reviews", Tags: []string{"go"}}}))
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.ListResources(ctx, connect.NewRequest(&controlv1.ListResourcesRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Msg.GetResources()) != 1 || list.Msg.GetResources()[0].GetId() != adv.Msg.GetId() {
		t.Errorf("ListResources = %v; want the advertised resource %s", list.Msg.GetResources(), adv.Msg.GetId())
	}
	_, err = c.Advertise(ctx, connect.NewRequest(&controlv1.AdvertiseRequest{Resource: &controlv1.Resource{Kind: "Not A Kind", Name: "x"}}))
	wantCode(t, err, connect.CodeInvalidArgument, "kind")

	found, err := findAll(t, c, &controlv1.FindRequest{Query: "kind:skill tag:go", TimeoutMs: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].GetId() != adv.Msg.GetId() || found[0].GetProvider() != n.ID().String() {
		t.Errorf("Find = %v; want the advertised resource", found)
	}
	_, err = findAll(t, c, &controlv1.FindRequest{Query: `kind:skill "unterminated`})
	wantCode(t, err, connect.CodeInvalidArgument, "")
	if _, err := c.Withdraw(ctx, connect.NewRequest(&controlv1.WithdrawRequest{Id: adv.Msg.GetId()})); err != nil {
		t.Fatal(err)
	}
	_, err = c.Withdraw(ctx, connect.NewRequest(&controlv1.WithdrawRequest{Id: adv.Msg.GetId()}))
	wantCode(t, err, connect.CodeNotFound, "")
}
