package control

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// Timing of Serve's shutdown.
const (
	// drainGrace is how long calls in flight may run on their own once ctx
	// ends, before their contexts are cancelled. Short unary calls finish in
	// it; a find or a connect that would wait on the network for minutes is
	// cut short, since the node behind it is about to close.
	drainGrace = time.Second
	// shutdownTimeout bounds the whole shutdown; connections still open
	// after it are closed.
	shutdownTimeout = 5 * time.Second
	// readHeaderTimeout bounds how long a connection may dawdle before its
	// request, so an idle local client cannot hold a server goroutine.
	readHeaderTimeout = 10 * time.Second
)

// Serve serves h on a unix socket at socketPath until ctx ends, then shuts
// down gracefully and removes the socket. It returns nil after a shutdown
// that ctx asked for.
//
// The socket has mode 0600 from the moment it can be reached at socketPath.
// A stale socket left by a daemon that died is replaced; a socket that
// answers means another daemon is serving, and Serve fails rather than steal
// its path. Serve speaks HTTP/1.1 and unencrypted HTTP/2 (prior knowledge),
// so Connect, gRPC-Web and gRPC clients all work.
func Serve(ctx context.Context, socketPath string, h http.Handler, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ln, err := listen(socketPath, logger)
	if err != nil {
		return err
	}
	sockInfo, err := os.Lstat(socketPath)
	if err != nil {
		ln.Close()
		return fmt.Errorf("control socket: %w", err)
	}
	defer removeIfSame(socketPath, sockInfo, logger)

	// Calls get a context of their own, cancelled only after drainGrace, so
	// that a shutdown lets short calls answer instead of failing them.
	callCtx, cancelCalls := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelCalls()

	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler:           h,
		Protocols:         &protocols,
		ReadHeaderTimeout: readHeaderTimeout,
		BaseContext:       func(net.Listener) context.Context { return callCtx },
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("control API listening", "socket", socketPath)

	select {
	case err := <-served:
		return fmt.Errorf("serving control API on %s: %w", socketPath, err)
	case <-ctx.Done():
	}

	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	shutdown := make(chan error, 1)
	go func() { shutdown <- srv.Shutdown(shutdownCtx) }()
	var shutdownErr error
	select {
	case shutdownErr = <-shutdown:
	case <-time.After(drainGrace):
		cancelCalls()
		shutdownErr = <-shutdown
	}
	if shutdownErr != nil {
		logger.Warn("control API did not shut down in time; closing its connections", "err", shutdownErr)
		srv.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving control API on %s: %w", socketPath, err)
	}
	logger.Info("control API stopped", "socket", socketPath)
	return nil
}

// listen binds a unix socket at path without ever exposing it with a mode
// wider than 0600, whatever the umask: it binds inside a fresh 0700
// directory next to path, narrows the socket's mode there, and renames it
// into place. Changing the umask instead would race with every other file
// the process creates.
func listen(path string, logger *slog.Logger) (*net.UnixListener, error) {
	if err := clearStale(path, logger); err != nil {
		return nil, err
	}
	tmpDir, err := os.MkdirTemp(filepath.Dir(path), ".ctl")
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	tmpPath := filepath.Join(tmpDir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmpPath, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	// The listener would unlink its bind path on Close, which after the
	// rename is no longer the socket; Serve removes the socket itself.
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(tmpPath, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Rename(tmpPath, path); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, nil
}

// clearStale removes a socket at path that no daemon answers on. It refuses
// to touch anything that is not a socket, and a socket that answers.
func clearStale(path string, logger *slog.Logger) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("control socket %s: exists and is not a socket; move it away", path)
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		conn.Close()
		return fmt.Errorf("control socket %s: another daemon is serving on it", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing stale control socket: %w", err)
	}
	logger.Info("removed stale control socket", "socket", path)
	return nil
}

// removeIfSame removes the socket at path unless it has been replaced since
// it was bound, so a daemon shutting down never removes a newer daemon's
// socket.
func removeIfSame(path string, bound fs.FileInfo, logger *slog.Logger) {
	fi, err := os.Lstat(path)
	if err != nil || !os.SameFile(fi, bound) {
		return
	}
	if err := os.Remove(path); err != nil {
		logger.Warn("removing control socket", "socket", path, "err", err)
	}
}
