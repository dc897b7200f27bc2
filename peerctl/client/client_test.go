package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pullnet/pullnet/internal/control"
	"github.com/pullnet/pullnet/internal/control/controltest"
	"github.com/pullnet/pullnet/internal/datadir"
	"github.com/pullnet/pullnet/node"
	"github.com/pullnet/pullnet/peerctl/client"
	"github.com/pullnet/pullnet/resource"
)

func start(t *testing.T, b *controltest.Backend) *client.Client {
	t.Helper()
	c := client.New(controltest.Start(t, b, control.Options{DataDir: "/data", Version: "v1"}))
	t.Cleanup(func() { c.Close() })
	return c
}

func TestStatusAndPeers(t *testing.T) {
	addr, _ := ma.NewMultiaddr("/ip4/127.0.0.1/tcp/4001")
	relay := "/ip4/10.0.0.9/tcp/4001/p2p/" + controltest.PeerID3.String() + "/p2p-circuit/p2p/" + controltest.PeerID.String()
	relayAddr, _ := ma.NewMultiaddr(relay)
	c := start(t, &controltest.Backend{
		ListenAddrs: []ma.Multiaddr{addr},
		Connected:   []node.PeerInfo{{ID: controltest.PeerID2, Direction: network.DirInbound, Latency: 1500 * time.Microsecond, Relayed: true, Transport: "relay"}},
		Reach:       "private",
		Relays:      []ma.Multiaddr{relayAddr},
	})
	ctx := context.Background()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := controltest.PeerID.String()
	if st.PeerID != id || len(st.Addrs) != 1 || st.Addrs[0] != "/ip4/127.0.0.1/tcp/4001/p2p/"+id ||
		st.Peers != 1 || st.Resources != 0 || st.Version != "v1" || st.DataDir != "/data" || st.Policy != "open" ||
		st.Reachability != "private" || len(st.RelayAddrs) != 1 || st.RelayAddrs[0] != relay {
		t.Errorf("Status = %+v", st)
	}
	peers, err := c.Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(peers) != 1 || peers[0].PeerID != controltest.PeerID2.String() || peers[0].Direction != "inbound" ||
		peers[0].LatencyMS != 1.5 || peers[0].Addrs == nil || !peers[0].Relayed || peers[0].Transport != "relay" {
		t.Errorf("Peers = %+v", peers)
	}
}

func TestResources(t *testing.T) {
	c := start(t, &controltest.Backend{})
	ctx := context.Background()
	expires := time.Now().Add(time.Hour).Truncate(time.Second).UTC()
	r := resource.Resource{
		Kind:    "dataset",
		Name:    "weather",
		Tags:    []string{"climate"},
		Attrs:   map[string]string{"rows": "100"},
		Access:  resource.Access{Type: resource.AccessURL, Value: "https://example.org/w"},
		Expires: expires,
	}
	adv, err := c.Advertise(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if adv.ID == "" || adv.Seq != 1 {
		t.Fatalf("Advertise = %+v", adv)
	}
	list, err := c.Resources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("Resources: %d; want 1", len(list))
	}
	got := list[0]
	if got.ID != adv.ID || got.Name != "weather" || got.Attrs["rows"] != "100" || got.Access != r.Access ||
		!got.Expires.Equal(expires) || got.Seq != 1 || got.Owner != controltest.PeerID.String() {
		t.Errorf("listed %+v", got)
	}

	_, err = c.Advertise(ctx, resource.Resource{Kind: "Not a kind", Name: "x"})
	if client.Code(err) != connect.CodeInvalidArgument || strings.HasPrefix(err.Error(), "invalid_argument") ||
		!strings.Contains(err.Error(), "kind") {
		t.Errorf("bad kind: %v (code %v); want InvalidArgument naming the kind, without the code prefix", err, client.Code(err))
	}

	if err := c.Withdraw(ctx, adv.ID); err != nil {
		t.Fatal(err)
	}
	err = c.Withdraw(ctx, adv.ID)
	if client.Code(err) != connect.CodeNotFound || !strings.Contains(err.Error(), adv.ID) {
		t.Errorf("second withdraw: %v (code %v); want NotFound", err, client.Code(err))
	}
}

func TestFind(t *testing.T) {
	addr, _ := ma.NewMultiaddr("/ip4/10.1.2.3/tcp/4001")
	res := node.Result{
		Resource: resource.Resource{ID: resource.NewID("o", "h"), Kind: "compute", Name: "A100 box", Tags: []string{"gpu"}},
		Provider: controltest.PeerID2,
		Addrs:    []ma.Multiaddr{addr},
		Elapsed:  2500 * time.Microsecond,
		Score:    0.75,
	}
	c := start(t, &controltest.Backend{Network: []node.Result{res, res, res}})
	ctx := context.Background()

	var got []client.FindResult
	for r, err := range c.Find(ctx, "tag:gpu", client.FindOptions{Limit: 2, Timeout: time.Second}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if len(got) != 2 {
		t.Fatalf("got %d results; want 2 (the limit)", len(got))
	}
	r := got[0]
	if r.ID != res.Resource.ID || r.Provider != controltest.PeerID2.String() || len(r.Addrs) != 1 ||
		r.Addrs[0] != "/ip4/10.1.2.3/tcp/4001" || r.Resource.Name != "A100 box" || r.ElapsedMS != 2.5 || r.Score != 0.75 {
		t.Errorf("result = %+v", r)
	}

	// Breaking out early is fine and leaves the client usable.
	for range c.Find(ctx, "tag:gpu", client.FindOptions{}) {
		break
	}

	var errs []error
	for _, err := range c.Find(ctx, `"oops`, client.FindOptions{}) {
		errs = append(errs, err)
	}
	if len(errs) != 1 || client.Code(errs[0]) != connect.CodeInvalidArgument {
		t.Errorf("bad query: got %v; want one InvalidArgument error", errs)
	}
}

func TestConnectAndRequests(t *testing.T) {
	res := node.Result{
		Resource: resource.Resource{ID: resource.NewID("o", "svc"), Kind: "service", Name: "echo", Access: resource.Access{Type: "tcp", Value: "127.0.0.1:7"}},
		Provider: controltest.PeerID2,
	}
	b := &controltest.Backend{Network: []node.Result{res}}
	received := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)
	b.AddRequest(node.Request{Session: "s1", ResourceID: "r1", Consumer: controltest.PeerID3, Message: "hello", Received: received})
	c := start(t, b)
	ctx := context.Background()

	g, err := c.Connect(ctx, res.Resource.ID, client.ConnectOptions{Message: "hi", Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if !g.Granted || g.Session == "" || g.Access != res.Resource.Access || g.Provider != controltest.PeerID2.String() || g.ResourceID != res.Resource.ID ||
		g.Forward != "" || g.Expires.Before(time.Now()) || g.Expires.Location() != time.UTC {
		t.Errorf("Connect = %+v", g)
	}

	reqs, err := c.Requests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := client.Request{Session: "s1", ResourceID: "r1", Consumer: controltest.PeerID3.String(), Message: "hello", Received: received}
	if len(reqs) != 1 || reqs[0] != want {
		t.Errorf("Requests = %+v; want [%+v]", reqs, want)
	}
	if err := c.Decline(ctx, "s1", "busy"); err != nil {
		t.Fatal(err)
	}
	if err := c.Approve(ctx, "s1"); client.Code(err) != connect.CodeNotFound {
		t.Errorf("approving a decided request: %v; want NotFound", err)
	}
}

func TestNoDaemon(t *testing.T) {
	dir, err := os.MkdirTemp("", "pn")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := client.SocketPath(dir)
	wantMsg := "no pulld running at " + dir + " (socket " + sock + "): start one with 'pulld run --data " + dir + "'"
	check := func(t *testing.T) {
		t.Helper()
		c := client.New(sock)
		_, err := c.Status(context.Background())
		if !errors.Is(err, client.ErrNoDaemon) || err.Error() != wantMsg || client.Code(err) != connect.CodeUnavailable {
			t.Errorf("Status: %v (code %v); want ErrNoDaemon saying %q", err, client.Code(err), wantMsg)
		}
		for _, err := range c.Find(context.Background(), "x", client.FindOptions{}) {
			if !errors.Is(err, client.ErrNoDaemon) {
				t.Errorf("Find: %v; want ErrNoDaemon", err)
			}
		}
	}
	t.Run("no socket", check)

	t.Run("stale socket", func(t *testing.T) {
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		ln.SetUnlinkOnClose(false)
		ln.Close()
		check(t)
	})
}

func TestUnreachableSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "pn")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// A socket path whose parent is a file: neither "no daemon" nor the
	// daemon's answer, and the message must say where it tried.
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = client.New(filepath.Join(notDir, "pulld.sock")).Status(context.Background())
	if err == nil || errors.Is(err, client.ErrNoDaemon) || !strings.HasPrefix(err.Error(), "cannot reach pulld at ") {
		t.Errorf("Status: %v; want a 'cannot reach pulld' error", err)
	}
}

// TestSocketName keeps the client looking where pulld listens. The client
// cannot import internal/datadir, which links libp2p.
func TestSocketName(t *testing.T) {
	if client.SocketName != datadir.SocketFile {
		t.Errorf("client.SocketName = %q, datadir.SocketFile = %q", client.SocketName, datadir.SocketFile)
	}
}

func TestForwardsAndSessions(t *testing.T) {
	res := node.Result{
		Resource: resource.Resource{ID: resource.NewID("o", "svc"), Kind: "service", Name: "echo", Access: resource.Access{Type: "tcp"}},
		Provider: controltest.PeerID2,
	}
	b := &controltest.Backend{Network: []node.Result{res}}
	issued := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)
	b.AddSession(node.SessionInfo{Session: "g-1", ResourceID: "rid", Peer: controltest.PeerID3, Issued: issued, Expires: issued.Add(time.Hour), BytesIn: 1, BytesOut: 2, TunnelsOpen: 3})
	c := start(t, b)
	ctx := context.Background()

	g, err := c.Connect(ctx, res.Resource.ID, client.ConnectOptions{Forward: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if !g.Granted || g.Forward != "127.0.0.1:40001" {
		t.Errorf("Connect with Forward = %+v", g)
	}
	g2, err := c.Connect(ctx, res.Resource.ID, client.ConnectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.Forward(ctx, g2.Session, "127.0.0.1:9000")
	if err != nil {
		t.Fatal(err)
	}
	if f.Session != g2.Session || f.Listen != "127.0.0.1:9000" || f.ResourceID != res.Resource.ID || f.Provider != controltest.PeerID2.String() ||
		!f.Active || f.Created.IsZero() || f.Created.Location() != time.UTC {
		t.Errorf("Forward = %+v", f)
	}
	if _, err := c.Forward(ctx, "nope", ""); client.Code(err) != connect.CodeNotFound || !strings.Contains(err.Error(), "nope") {
		t.Errorf("Forward of an unknown session: %v (code %v); want NotFound", err, client.Code(err))
	}
	if _, err := c.Forward(ctx, g2.Session, "9000"); client.Code(err) != connect.CodeInvalidArgument {
		t.Errorf("Forward on a bare port: %v (code %v); want InvalidArgument", err, client.Code(err))
	}

	b.AddForward(node.ForwardInfo{Session: g.Session, ResourceID: res.Resource.ID, Listen: "127.0.0.1:40001", BytesIn: 5, BytesOut: 6, ConnsOpen: 1, ConnsTotal: 2, Err: "boom", Active: true})
	b.AddForward(node.ForwardInfo{Session: g2.Session, Listen: "127.0.0.1:9000", Err: "not restored: listen on 127.0.0.1:9000: address already in use"})
	fs, err := c.Forwards(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []client.Forward{
		{Session: g.Session, ResourceID: res.Resource.ID, Listen: "127.0.0.1:40001", BytesIn: 5, BytesOut: 6, ConnsOpen: 1, ConnsTotal: 2, Error: "boom", Active: true},
		{Session: g2.Session, Listen: "127.0.0.1:9000", Error: "not restored: listen on 127.0.0.1:9000: address already in use"},
	}
	if fmt.Sprint(fs) != fmt.Sprint(want) {
		t.Errorf("Forwards:\n got %+v\nwant %+v", fs, want)
	}
	js, _ := json.Marshal(fs[1])
	if string(js) != `{"session":"`+g2.Session+`","resource_id":"","provider":"","listen":"127.0.0.1:9000","bytes_in":0,"bytes_out":0,"conns_open":0,"conns_total":0,"error":"not restored: listen on 127.0.0.1:9000: address already in use","active":false}` {
		t.Errorf("forward as JSON: %s", js)
	}

	if err := c.CloseForward(ctx, g.Session); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseForward(ctx, g.Session); client.Code(err) != connect.CodeNotFound {
		t.Errorf("closing twice: %v; want NotFound", err)
	}

	ss, err := c.Sessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantProv := client.Session{Session: "g-1", ResourceID: "rid", Role: "provider", Peer: controltest.PeerID3.String(), Issued: issued, Expires: issued.Add(time.Hour),
		BytesIn: 1, BytesOut: 2, TunnelsOpen: 3}
	if len(ss) != 3 || ss[0] != wantProv || ss[1].Role != "consumer" || ss[1].Session != g.Session || !ss[1].Issued.IsZero() ||
		!ss[1].Expires.Equal(g.Expires) || ss[2].Session != g2.Session {
		t.Errorf("Sessions = %+v", ss)
	}
	js, _ = json.Marshal(ss[1])
	if strings.Contains(string(js), "issued") || !strings.Contains(string(js), `"expires":"`) || !strings.Contains(string(js), `"tunnels_open":0`) {
		t.Errorf("consumer session as JSON: %s", js)
	}

	if err := c.Revoke(ctx, "g-1"); err != nil {
		t.Fatal(err)
	}
	if ss, _ := c.Sessions(ctx); !ss[0].Revoked {
		t.Errorf("after Revoke: %+v", ss[0])
	}
	if err := c.Revoke(ctx, g.Session); client.Code(err) != connect.CodeNotFound {
		t.Errorf("revoking a held session: %v; want NotFound", err)
	}
	if err := c.Revoke(ctx, ""); client.Code(err) != connect.CodeInvalidArgument {
		t.Errorf("revoking no session: %v; want InvalidArgument", err)
	}
}

func TestEmptyLists(t *testing.T) {
	c := start(t, &controltest.Backend{})
	ctx := context.Background()
	fs, err := c.Forwards(ctx)
	if err != nil || fs == nil || len(fs) != 0 {
		t.Errorf("Forwards = %#v, %v; want an empty list", fs, err)
	}
	ss, err := c.Sessions(ctx)
	if err != nil || ss == nil || len(ss) != 0 {
		t.Errorf("Sessions = %#v, %v; want an empty list", ss, err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.RelayAddrs == nil || st.Reachability != "unknown" {
		t.Errorf("Status = %+v, %v; want [] relay addrs and unknown reachability", st, err)
	}
}
