package tunnel

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// CopyBufferSize is the buffer each direction of a tunnel copies through.
// Larger than io.Copy's 32 KiB so that one read can fill a whole yamux frame
// and a TLS record run, which halves the system calls per byte.
const CopyBufferSize = 256 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, CopyBufferSize); return &b }}

// halfCloser is a connection whose write side can close alone: TCP
// connections and libp2p streams both are.
type halfCloser interface {
	io.ReadWriteCloser
	CloseWrite() error
}

// Pipe copies between the tunnel stream and the local connection until both
// directions end, passing each side's end of data on as a half-close, then
// closes both. It adds the bytes that come in over the stream to in and
// those that go out over it to out as they pass, so counts are live while a
// connection stays open, and returns the totals.
func Pipe(stream, local halfCloser, in, out *atomic.Int64) (nin, nout int64) {
	var wg sync.WaitGroup
	wg.Add(2)
	var failed sync.Once
	abort := func() {
		failed.Do(func() {
			// One side broke: a reset, not a clean end. Tear both down so the
			// other copy does not wait for data that will never come.
			if r, ok := stream.(interface{ Reset() error }); ok {
				r.Reset()
			} else {
				stream.Close()
			}
			if t, ok := local.(*net.TCPConn); ok {
				t.SetLinger(0)
			}
			local.Close()
		})
	}
	go func() {
		defer wg.Done()
		n, err := copyBuf(local, stream, in)
		nin = n
		if err != nil {
			abort()
			return
		}
		local.CloseWrite()
	}()
	go func() {
		defer wg.Done()
		n, err := copyBuf(stream, local, out)
		nout = n
		if err != nil {
			abort()
			return
		}
		stream.CloseWrite()
	}()
	wg.Wait()
	stream.Close()
	local.Close()
	return nin, nout
}

// copyBuf copies src to dst through a pooled buffer. It does not use
// io.CopyBuffer, which ignores the buffer it is given whenever either side is
// a *net.TCPConn (ReadFrom/WriteTo take over with their own 32 KiB).
func copyBuf(dst io.Writer, src io.Reader, count *atomic.Int64) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var n int64
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			n += int64(nw)
			if count != nil {
				count.Add(int64(nw))
			}
			if werr != nil {
				return n, werr
			}
			if nw != nr {
				return n, io.ErrShortWrite
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return n, nil
			}
			return n, rerr
		}
	}
}
