package control_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pullnet/pullnet/internal/control"
	"github.com/pullnet/pullnet/internal/control/controltest"
	"github.com/pullnet/pullnet/node"
	controlv1 "github.com/pullnet/pullnet/proto/gen/pullnet/control/v1"
	"github.com/pullnet/pullnet/resource"
)

// serviceBackend is a stand-in node whose network has a TCP service and a
// dataset.
func serviceBackend() (*controltest.Backend, node.Result, node.Result) {
	svc := result("service", "echo", controltest.PeerID2.String())
	svc.Resource.Access = resource.Access{Type: resource.AccessTCP}
	data := result("dataset", "weather", controltest.PeerID2.String())
	data.Resource.Access = resource.Access{Type: resource.AccessURL, Value: "https://example.org/w"}
	return &controltest.Backend{Network: []node.Result{svc, data}}, svc, data
}

func TestConnectWithForward(t *testing.T) {
	b, svc, data := serviceBackend()
	sock := controltest.Start(t, b, control.Options{})
	c := newClient(t, sock, false)
	ctx := context.Background()

	res, err := c.Connect(ctx, connect.NewRequest(&controlv1.ConnectRequest{Id: svc.Resource.ID, Forward: "127.0.0.1:0"}))
	if err != nil {
		t.Fatal(err)
	}
	m := res.Msg
	if !m.GetGranted() || m.GetForward() != "127.0.0.1:40001" || m.GetExpiresUnix() < time.Now().Unix() {
		t.Errorf("Connect with forward = %v; want a grant that expires later, forwarded on the port the backend picked", m)
	}
	fs := b.Forwards()
	if len(fs) != 1 || fs[0].Session != m.GetSession() || fs[0].Listen != m.GetForward() || fs[0].ResourceID != svc.Resource.ID {
		t.Errorf("backend forwards = %+v", fs)
	}

	// Without forward, none is opened.
	res, err = c.Connect(ctx, connect.NewRequest(&controlv1.ConnectRequest{Id: svc.Resource.ID}))
	if err != nil || res.Msg.GetForward() != "" || len(b.Forwards()) != 1 {
		t.Errorf("Connect without forward = %v, %v; %d forwards", res.Msg, err, len(b.Forwards()))
	}

	// A grant whose forward fails fails the call, but says the session
	// stands, and the node keeps it.
	_, err = c.Connect(ctx, connect.NewRequest(&controlv1.ConnectRequest{Id: data.Resource.ID, Forward: "127.0.0.1:9000"}))
	wantCode(t, err, connect.CodeInvalidArgument, "was granted, but its forward was not opened")
	var ce *connect.Error
	errors.As(err, &ce)
	sessions, _ := b.Sessions(ctx)
	last := sessions[len(sessions)-1]
	if last.ResourceID != data.Resource.ID || !strings.Contains(ce.Message(), "peerctl forward "+last.Session) ||
		!strings.Contains(ce.Message(), "not a TCP service") {
		t.Errorf("failed forward: %q; sessions %+v", ce.Message(), sessions)
	}
}

func TestConnectForwardFailsOrIsSkipped(t *testing.T) {
	b, svc, _ := serviceBackend()
	var forwards atomic.Int32
	b.ForwardFunc = func(ctx context.Context, session, listen string) (node.ForwardInfo, error) {
		forwards.Add(1)
		return node.ForwardInfo{}, fmt.Errorf("forward: listen on %s: bind: address already in use", listen)
	}
	var declined atomic.Bool
	b.ConnectFunc = func(ctx context.Context, id, _ string) (node.Grant, error) {
		if declined.Load() {
			return node.Grant{Reason: "busy", ResourceID: id, Provider: controltest.PeerID2}, nil
		}
		return node.Grant{Granted: true, Session: "s-9", ResourceID: id, Provider: controltest.PeerID2, Access: svc.Resource.Access}, nil
	}
	sock := controltest.Start(t, b, control.Options{})
	c := newClient(t, sock, false)
	ctx := context.Background()

	_, err := c.Connect(ctx, connect.NewRequest(&controlv1.ConnectRequest{Id: svc.Resource.ID, Forward: "127.0.0.1:9000"}))
	wantCode(t, err, connect.CodeInternal, "session s-9 was granted, but its forward was not opened (open it with 'peerctl forward s-9'): forward: listen on 127.0.0.1:9000: bind: address already in use")

	// A decline opens nothing.
	declined.Store(true)
	res, err := c.Connect(ctx, connect.NewRequest(&controlv1.ConnectRequest{Id: svc.Resource.ID, Forward: "127.0.0.1:9000"}))
	if err != nil || res.Msg.GetGranted() || res.Msg.GetForward() != "" || res.Msg.GetExpiresUnix() != 0 {
		t.Errorf("declined Connect with forward = %v, %v", res.Msg, err)
	}
	if n := forwards.Load(); n != 1 {
		t.Errorf("backend asked for %d forwards; want 1", n)
	}
}

func TestForwards(t *testing.T) {
	b, svc, data := serviceBackend()
	sock := controltest.Start(t, b, control.Options{})
	c := newClient(t, sock, false)
	ctx := context.Background()
	grant := func(id string) string {
		t.Helper()
		res, err := c.Connect(ctx, connect.NewRequest(&controlv1.ConnectRequest{Id: id}))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg.GetSession()
	}
	s1, s2, sData := grant(svc.Resource.ID), grant(svc.Resource.ID), grant(data.Resource.ID)

	res, err := c.Forward(ctx, connect.NewRequest(&controlv1.ForwardRequest{Session: s1, Listen: "127.0.0.1:9000"}))
	if err != nil {
		t.Fatal(err)
	}
	f := res.Msg.GetForward()
	if f.GetSession() != s1 || f.GetListen() != "127.0.0.1:9000" || f.GetResourceId() != svc.Resource.ID ||
		f.GetProvider() != controltest.PeerID2.String() || f.GetCreatedUnix() == 0 || f.GetError() != "" {
		t.Errorf("Forward = %v", f)
	}
	// No listen address: the node picks.
	res, err = c.Forward(ctx, connect.NewRequest(&controlv1.ForwardRequest{Session: s2}))
	if err != nil || res.Msg.GetForward().GetListen() != "127.0.0.1:40001" {
		t.Errorf("Forward without listen = %v, %v", res.Msg, err)
	}

	_, err = c.Forward(ctx, connect.NewRequest(&controlv1.ForwardRequest{Session: "nope"}))
	wantCode(t, err, connect.CodeNotFound, "nope")
	_, err = c.Forward(ctx, connect.NewRequest(&controlv1.ForwardRequest{Session: sData}))
	wantCode(t, err, connect.CodeInvalidArgument, "not a TCP service")

	// Traffic, errors and forwards that were not restored come through.
	created := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	b.AddForward(node.ForwardInfo{Session: s1, ResourceID: svc.Resource.ID, Provider: controltest.PeerID2.String(), Listen: "127.0.0.1:9000",
		BytesIn: 2048, BytesOut: 100, ConnsOpen: 1, ConnsTotal: 3, Err: "tunnel refused: session revoked", Active: true, Created: created})
	b.AddForward(node.ForwardInfo{Session: s2, Listen: "127.0.0.1:40001", Err: "not restored: listen on 127.0.0.1:40001: address already in use"})
	b.AddForward(node.ForwardInfo{Session: "s-odd", Listen: "127.0.0.1:1"})
	list, err := c.Forwards(ctx, connect.NewRequest(&controlv1.ForwardsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	got := list.Msg.GetForwards()
	if len(got) != 3 {
		t.Fatalf("Forwards: %d; want 3", len(got))
	}
	if f := got[0]; f.GetBytesIn() != 2048 || f.GetBytesOut() != 100 || f.GetConnsOpen() != 1 || f.GetConnsTotal() != 3 ||
		f.GetError() != "tunnel refused: session revoked" || f.GetCreatedUnix() != created.Unix() {
		t.Errorf("forward 0 = %v", f)
	}
	if f := got[1]; f.GetError() != "not restored: listen on 127.0.0.1:40001: address already in use" || f.GetCreatedUnix() != 0 || f.GetActive() {
		t.Errorf("forward 1 = %v", f)
	}
	if f := got[2]; f.GetActive() {
		t.Errorf("forward 2 = %v, want inactive", f)
	}

	if _, err := c.CloseForward(ctx, connect.NewRequest(&controlv1.CloseForwardRequest{Session: s1})); err != nil {
		t.Fatal(err)
	}
	_, err = c.CloseForward(ctx, connect.NewRequest(&controlv1.CloseForwardRequest{Session: s1}))
	wantCode(t, err, connect.CodeNotFound, s1)
	if n := len(b.Forwards()); n != 2 {
		t.Errorf("%d forwards after closing one; want 2", n)
	}
}

func TestSessionsAndRevoke(t *testing.T) {
	b, svc, _ := serviceBackend()
	issued := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	b.AddSession(node.SessionInfo{Session: "g-1", ResourceID: "rid", Peer: controltest.PeerID3, Issued: issued, Expires: issued.Add(time.Hour),
		BytesIn: 10, BytesOut: 20, TunnelsOpen: 2})
	sock := controltest.Start(t, b, control.Options{})
	c := newClient(t, sock, false)
	ctx := context.Background()
	g, err := c.Connect(ctx, connect.NewRequest(&controlv1.ConnectRequest{Id: svc.Resource.ID}))
	if err != nil {
		t.Fatal(err)
	}

	list := func() []*controlv1.SessionInfo {
		t.Helper()
		res, err := c.Sessions(ctx, connect.NewRequest(&controlv1.SessionsRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg.GetSessions()
	}
	got := list()
	if len(got) != 2 {
		t.Fatalf("Sessions: %v; want 2", got)
	}
	want := &controlv1.SessionInfo{Session: "g-1", ResourceId: "rid", Role: "provider", Peer: controltest.PeerID3.String(),
		IssuedUnix: issued.Unix(), ExpiresUnix: issued.Add(time.Hour).Unix(), BytesIn: 10, BytesOut: 20, TunnelsOpen: 2}
	if fmt.Sprint(got[0]) != fmt.Sprint(want) {
		t.Errorf("provider session:\n got %v\nwant %v", got[0], want)
	}
	if s := got[1]; s.GetSession() != g.Msg.GetSession() || s.GetRole() != "consumer" || s.GetPeer() != controltest.PeerID2.String() ||
		s.GetIssuedUnix() != 0 || s.GetExpiresUnix() != g.Msg.GetExpiresUnix() || s.GetRevoked() {
		t.Errorf("consumer session = %v", s)
	}

	if _, err := c.Revoke(ctx, connect.NewRequest(&controlv1.RevokeRequest{Session: "g-1"})); err != nil {
		t.Fatal(err)
	}
	if s := list()[0]; !s.GetRevoked() || s.GetTunnelsOpen() != 0 {
		t.Errorf("after revoke: %v", s)
	}
	// Only the provider can revoke.
	_, err = c.Revoke(ctx, connect.NewRequest(&controlv1.RevokeRequest{Session: g.Msg.GetSession()}))
	wantCode(t, err, connect.CodeNotFound, g.Msg.GetSession())
}

// sessionsErrBackend fails Sessions.
type sessionsErrBackend struct{ controltest.Backend }

func (*sessionsErrBackend) Sessions(context.Context) ([]node.SessionInfo, error) {
	return nil, fmt.Errorf("sessions: %w", node.ErrClosed)
}

func TestSessionsError(t *testing.T) {
	sock := controltest.Start(t, &sessionsErrBackend{}, control.Options{})
	_, err := newClient(t, sock, false).Sessions(context.Background(), connect.NewRequest(&controlv1.SessionsRequest{}))
	wantCode(t, err, connect.CodeUnavailable, "node closed")
}

// waitUntil polls cond every 50ms until it holds, failing the test after
// timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}

// TestRealNodesTunnel drives two real nodes on loopback through their
// control APIs: a provider advertises an HTTP service, the consumer finds
// it, connects with a forward and fetches a page through it, both sides see
// the traffic, and a revoke shuts the forward's way in.
func TestRealNodesTunnel(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two libp2p nodes")
	}
	ctx := context.Background()
	loopback := []ma.Multiaddr{mustAddr(t, "/ip4/127.0.0.1/tcp/0")}
	prov, err := node.New(ctx, node.Config{ListenAddrs: loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer prov.Close()
	cons, err := node.New(ctx, node.Config{ListenAddrs: loopback, Bootstrap: []peer.AddrInfo{prov.AddrInfo()}})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	pc := newClient(t, controltest.Start(t, prov, control.Options{}), false)
	cc := newClient(t, controltest.Start(t, cons, control.Options{}), false)

	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello through the tunnel")
	}))
	defer svc.Close()
	addr := strings.TrimPrefix(svc.URL, "http://")

	adv, err := pc.Advertise(ctx, connect.NewRequest(&controlv1.AdvertiseRequest{Resource: &controlv1.Resource{
		Kind: "service", Name: "hello API", Tags: []string{"tunneltest"}, Access: &controlv1.Access{Type: "tcp", Value: addr},
	}}))
	if err != nil {
		t.Fatal(err)
	}
	id := adv.Msg.GetId()
	own, err := pc.ListResources(ctx, connect.NewRequest(&controlv1.ListResourcesRequest{}))
	if err != nil || own.Msg.GetResources()[0].GetAccess().GetValue() != addr {
		t.Fatalf("the owner's view lost the service address: %v %v", own.Msg, err)
	}

	var found *controlv1.FindResponse
	waitUntil(t, 60*time.Second, "the consumer to find the service", func() bool {
		got, err := findAll(t, cc, &controlv1.FindRequest{Query: "kind:service tag:tunneltest", TimeoutMs: 2000})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range got {
			if r.GetId() == id {
				found = r
				return true
			}
		}
		return false
	})
	if a := found.GetResource().GetAccess(); a.GetType() != "tcp" || a.GetValue() != "" {
		t.Fatalf("published access = %v; the service address must stay with its owner", a)
	}

	g, err := cc.Connect(ctx, connect.NewRequest(&controlv1.ConnectRequest{Id: id, Forward: "127.0.0.1:0", TimeoutMs: 30000}))
	if err != nil {
		t.Fatal(err)
	}
	session, listen := g.Msg.GetSession(), g.Msg.GetForward()
	if !g.Msg.GetGranted() || !strings.HasPrefix(listen, "127.0.0.1:") || strings.HasSuffix(listen, ":0") ||
		g.Msg.GetExpiresUnix() <= time.Now().Unix() || g.Msg.GetProvider() != prov.ID().String() {
		t.Fatalf("Connect with forward = %v", g.Msg)
	}

	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
	resp, err := hc.Get("http://" + listen + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "hello through the tunnel" {
		t.Fatalf("GET through the forward: %q, %v", body, err)
	}

	waitUntil(t, 10*time.Second, "the forward's byte counts", func() bool {
		res, err := cc.Forwards(ctx, connect.NewRequest(&controlv1.ForwardsRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		fs := res.Msg.GetForwards()
		return len(fs) == 1 && fs[0].GetSession() == session && fs[0].GetListen() == listen &&
			fs[0].GetBytesIn() > 0 && fs[0].GetBytesOut() > 0 && fs[0].GetConnsTotal() == 1
	})
	provSession := func() *controlv1.SessionInfo {
		t.Helper()
		res, err := pc.Sessions(ctx, connect.NewRequest(&controlv1.SessionsRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range res.Msg.GetSessions() {
			if s.GetSession() == session {
				return s
			}
		}
		t.Fatalf("the provider lists no session %s: %v", session, res.Msg.GetSessions())
		return nil
	}
	if s := provSession(); s.GetRole() != "provider" || s.GetPeer() != cons.ID().String() || s.GetResourceId() != id ||
		s.GetIssuedUnix() == 0 || s.GetRevoked() {
		t.Errorf("provider's session = %v", s)
	}
	waitUntil(t, 10*time.Second, "the provider's byte counts", func() bool { return provSession().GetBytesOut() > 0 })

	if _, err := pc.Revoke(ctx, connect.NewRequest(&controlv1.RevokeRequest{Session: session})); err != nil {
		t.Fatal(err)
	}
	if !provSession().GetRevoked() {
		t.Error("the provider does not list the session as revoked")
	}
	if resp, err := hc.Get("http://" + listen + "/"); err == nil {
		resp.Body.Close()
		t.Fatalf("GET through a revoked session's forward: %s; want an error", resp.Status)
	}
	_, err = pc.Revoke(ctx, connect.NewRequest(&controlv1.RevokeRequest{Session: "no-such-session"}))
	wantCode(t, err, connect.CodeNotFound, "no-such-session")

	if _, err := cc.CloseForward(ctx, connect.NewRequest(&controlv1.CloseForwardRequest{Session: session})); err != nil {
		t.Fatal(err)
	}
	_, err = cc.CloseForward(ctx, connect.NewRequest(&controlv1.CloseForwardRequest{Session: session}))
	wantCode(t, err, connect.CodeNotFound, "")
}
