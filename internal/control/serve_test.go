package control_test

import (
	"context"
	"errors"
	"io/fs"
	"iter"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/pullnet/pullnet/internal/control"
	"github.com/pullnet/pullnet/internal/control/controltest"
	"github.com/pullnet/pullnet/node"
	controlv1 "github.com/pullnet/pullnet/proto/gen/pullnet/control/v1"
)

// shortTempDir is t.TempDir for unix sockets, whose paths must stay under
// 108 bytes: t.TempDir's include the test's name.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// serve runs control.Serve over b in the background; stop ends it and
// returns its error.
func serve(t *testing.T, socketPath string, b control.Backend) (stop func() error) {
	t.Helper()
	_, h := control.NewHandler(b, control.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- control.Serve(ctx, socketPath, h, nil) }()
	var stopErr error
	stopped := false
	stopOnce := func() error {
		if !stopped {
			cancel()
			stopErr = <-done
			stopped = true
		}
		return stopErr
	}
	t.Cleanup(func() { stopOnce() })
	waitFor(t, "the socket to accept", func() bool {
		select {
		case err := <-done:
			t.Fatalf("Serve: %v", err)
		default:
		}
		return dialable(socketPath)
	})
	return stopOnce
}

func dialable(socketPath string) bool {
	conn, err := net.Dial("unix", socketPath)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

func TestSocketMode(t *testing.T) {
	// Whatever the umask, the socket must never be reachable by others.
	old := syscall.Umask(0)
	defer syscall.Umask(old)

	dir := shortTempDir(t)
	sock := filepath.Join(dir, "pulld.sock")
	stop := serve(t, sock, &controltest.Backend{})
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v; want a socket with mode 0600", fi.Mode())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("data directory holds %d entries; want only the socket", len(entries))
	}

	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket still there after shutdown: %v", err)
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	sock := filepath.Join(shortTempDir(t), "pulld.sock")
	// A daemon that died leaves its socket file behind, with nobody
	// listening.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if dialable(sock) {
		t.Fatal("stale socket still accepts")
	}
	stop := serve(t, sock, &controltest.Backend{})
	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestLiveSocketKept(t *testing.T) {
	sock := filepath.Join(shortTempDir(t), "pulld.sock")
	serve(t, sock, &controltest.Backend{})

	_, h := control.NewHandler(&controltest.Backend{}, control.Options{})
	err := control.Serve(context.Background(), sock, h, nil)
	if err == nil || !strings.Contains(err.Error(), "another daemon") {
		t.Fatalf("second Serve on a live socket: %v; want an error saying another daemon serves it", err)
	}
	if !dialable(sock) {
		t.Error("first daemon's socket is gone")
	}
}

func TestNotASocketKept(t *testing.T) {
	path := filepath.Join(shortTempDir(t), "pulld.sock")
	if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, h := control.NewHandler(&controltest.Backend{}, control.Options{})
	err := control.Serve(context.Background(), path, h, nil)
	if err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Serve over a regular file: %v; want an error saying it is not a socket", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "precious" {
		t.Errorf("file now holds %q (%v)", b, err)
	}
}

// blockingBackend holds Approve and Find until released or cancelled.
type blockingBackend struct {
	controltest.Backend
	entered chan string
	release chan struct{}
}

func (b *blockingBackend) Approve(string) error {
	b.entered <- "approve"
	<-b.release
	return nil
}

func (b *blockingBackend) Find(ctx context.Context, _ string, _ node.FindOptions) iter.Seq2[node.Result, error] {
	return func(yield func(node.Result, error) bool) {
		b.entered <- "find"
		<-ctx.Done()
		yield(node.Result{}, ctx.Err())
	}
}

// TestShutdown checks that a shutdown lets a short call in flight answer,
// cuts a long find short, and removes the socket.
func TestShutdown(t *testing.T) {
	sock := filepath.Join(shortTempDir(t), "pulld.sock")
	b := &blockingBackend{entered: make(chan string, 2), release: make(chan struct{})}
	stop := serve(t, sock, b)
	c := newClient(t, sock, false)

	approved := make(chan error, 1)
	go func() {
		_, err := c.Approve(context.Background(), connect.NewRequest(&controlv1.ApproveRequest{Session: "s"}))
		approved <- err
	}()
	found := make(chan error, 1)
	go func() {
		_, err := findAll(t, c, &controlv1.FindRequest{Query: "x", TimeoutMs: time.Hour.Milliseconds()})
		found <- err
	}()
	<-b.entered
	<-b.entered

	stopped := make(chan error, 1)
	start := time.Now()
	go func() { stopped <- stop() }()
	// Once the server stops accepting, the approve in flight may finish.
	waitFor(t, "the server to stop accepting", func() bool { return !dialable(sock) })
	close(b.release)

	if err := <-approved; err != nil {
		t.Errorf("approve in flight during shutdown: %v", err)
	}
	if err := <-found; err == nil {
		t.Error("find in flight during shutdown ended without an error")
	}
	if err := <-stopped; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket still there after shutdown: %v", err)
	}
}
