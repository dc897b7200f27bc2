package node_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pullnet/pullnet/internal/testswarm"
	"github.com/pullnet/pullnet/node"
	"github.com/pullnet/pullnet/protocol/tunnel"
	"github.com/pullnet/pullnet/resource"
)

// httpService serves "hello from the GPU box" on a loopback port.
func httpService(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello from the GPU box")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestServiceTunnel(t *testing.T) {
	s := testswarm.New(t, 4, testswarm.Options{})
	prov, cons := s.Nodes[0], s.Nodes[3]
	ctx := context.Background()
	addr := httpService(t)

	r, err := prov.Advertise(ctx, resource.Resource{Kind: "service", Name: "inference API", Tags: []string{"gpu"},
		Access: resource.Access{Type: resource.AccessTCP, Value: addr}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Access.Value != addr {
		t.Fatalf("owner's view lost the service address: %+v", r.Access)
	}
	// The published record says "tcp" and nothing about where.
	found := waitFound(t, cons, "tag:gpu", r.ID)
	if found.Resource.Access.Type != resource.AccessTCP || found.Resource.Access.Value != "" {
		t.Fatalf("published access = %+v; the local address must not be published", found.Resource.Access)
	}
	g, err := cons.Connect(ctx, r.ID, "")
	if err != nil || !g.Granted {
		t.Fatalf("connect: %+v %v", g, err)
	}
	if g.Access.Value != "" || g.Expires.IsZero() {
		t.Fatalf("grant = %+v", g)
	}

	// Dial: a net.Conn straight to the service.
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return cons.Dial(ctx, g.Session)
	}}}
	resp, err := hc.Get("http://gpu-box/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello from the GPU box" {
		t.Fatalf("body through Dial = %q", body)
	}
	hc.CloseIdleConnections()

	// Forward: a local port.
	fw, err := cons.Forward(ctx, g.Session, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get("http://" + fw.Listen + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello from the GPU box" {
		t.Fatalf("body through forward = %q", body)
	}
	http.DefaultClient.CloseIdleConnections()
	testswarm.WaitFor(t, 5*time.Second, "forward byte counts", func() bool {
		fs := cons.Forwards()
		return len(fs) == 1 && fs[0].BytesIn > 0 && fs[0].BytesOut > 0 && fs[0].ConnsTotal == 1
	})
	sessions, err := prov.Sessions(ctx)
	if err != nil || len(sessions) != 1 || sessions[0].Role != "provider" || sessions[0].BytesOut == 0 || sessions[0].Peer != cons.ID() {
		t.Fatalf("provider sessions: %+v %v", sessions, err)
	}

	// Revoke: new tunnels are refused, and the forward says why.
	if err := prov.Revoke(ctx, g.Session); err != nil {
		t.Fatal(err)
	}
	if _, err := cons.Dial(ctx, g.Session); !errors.Is(err, tunnel.ErrRefused) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("dial after revoke: %v", err)
	}
	if _, err := http.Get("http://" + fw.Listen + "/"); err == nil {
		t.Fatal("GET through a revoked forward succeeded")
	}
	if fs := cons.Forwards(); !strings.Contains(fs[0].Err, "revoked") {
		t.Fatalf("forward error = %q", fs[0].Err)
	}
	if err := cons.CloseForward(ctx, g.Session); err != nil {
		t.Fatal(err)
	}
	if err := cons.CloseForward(ctx, g.Session); !errors.Is(err, node.ErrNotFound) {
		t.Fatalf("second close: %v", err)
	}
}

func TestTunnelFaults(t *testing.T) {
	s := testswarm.New(t, 2, testswarm.Options{})
	prov, cons := s.Nodes[0], s.Nodes[1]
	ctx := context.Background()
	// A service that is down.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	down := ln.Addr().String()
	ln.Close()
	r, err := prov.Advertise(ctx, resource.Resource{Kind: "service", Name: "down", Access: resource.Access{Type: "tcp", Value: down}})
	if err != nil {
		t.Fatal(err)
	}
	waitFound(t, cons, "kind:service", r.ID)
	g, err := cons.Connect(ctx, r.ID, "")
	if err != nil || !g.Granted {
		t.Fatalf("connect: %+v %v", g, err)
	}
	fw, err := cons.Forward(ctx, g.Session, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The forward closes the local connection at once (with a reset, which
	// can even beat the end of the client's connect).
	if c, err := net.Dial("tcp", fw.Listen); err == nil {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read from a forward to a down service: %v; want it closed promptly", err)
		}
		c.Close()
	}
	testswarm.WaitFor(t, 5*time.Second, "the forward to show the error", func() bool {
		return strings.Contains(cons.Forwards()[0].Err, "not answering")
	})

	// Bad service addresses and sessions this node does not hold.
	if _, err := prov.Advertise(ctx, resource.Resource{Kind: "service", Name: "x", Access: resource.Access{Type: "tcp", Value: "nope"}}); !errors.Is(err, node.ErrInvalid) {
		t.Fatalf("bad service address: %v", err)
	}
	if _, err := cons.Dial(ctx, "no-such-session"); !errors.Is(err, node.ErrNotFound) {
		t.Fatalf("dial unknown session: %v", err)
	}
	if _, err := cons.Forward(ctx, "no-such-session", ""); !errors.Is(err, node.ErrNotFound) {
		t.Fatalf("forward unknown session: %v", err)
	}
}

// A consumer that restarts on its data directory gets its forwards back, on
// the same local port, and they still carry traffic.
func TestForwardsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	loopback := []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}
	prov, err := node.New(ctx, node.Config{ListenAddrs: loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer prov.Close()
	r, err := prov.Advertise(ctx, resource.Resource{Kind: "service", Name: "web", Access: resource.Access{Type: "tcp", Value: httpService(t)}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := node.Config{DataDir: dir, ListenAddrs: loopback, Bootstrap: []peer.AddrInfo{prov.AddrInfo()}}
	cons, err := node.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := prov.WaitAnnounced(cctx, r.ID); err != nil {
		t.Fatal(err)
	}
	g, err := cons.Connect(cctx, r.ID, "")
	if err != nil || !g.Granted {
		t.Fatalf("connect: %+v %v", g, err)
	}
	fw, err := cons.Forward(ctx, g.Session, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	get := func() string {
		t.Helper()
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
		resp, err := c.Get("http://" + fw.Listen + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := get(); got != "hello from the GPU box" {
		t.Fatalf("before restart: %q", got)
	}
	if err := cons.Close(); err != nil {
		t.Fatal(err)
	}
	cons, err = node.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	fs := cons.Forwards()
	if len(fs) != 1 || !fs[0].Active || fs[0].Listen != fw.Listen || fs[0].Session != g.Session {
		t.Fatalf("forwards after restart: %+v", fs)
	}
	if got := get(); got != "hello from the GPU box" {
		t.Fatalf("after restart: %q", got)
	}
}
