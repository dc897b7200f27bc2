package tunnel

import (
	"net"

	"github.com/libp2p/go-libp2p/core/network"
)

// Conn is a tunnel stream seen as a net.Conn, for programs that want a
// connection to the service rather than a local port. Reads and writes are
// counted in the session's Counters when it has them.
type Conn struct {
	network.Stream
	counters *Counters
}

// NewConn wraps an open tunnel stream. counters may be nil.
func NewConn(s network.Stream, counters *Counters) *Conn {
	if counters != nil {
		counters.Open.Add(1)
		counters.Total.Add(1)
	}
	return &Conn{Stream: s, counters: counters}
}

func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.Stream.Read(b)
	if c.counters != nil {
		c.counters.In.Add(int64(n))
	}
	return n, err
}

func (c *Conn) Write(b []byte) (int, error) {
	n, err := c.Stream.Write(b)
	if c.counters != nil {
		c.counters.Out.Add(int64(n))
	}
	return n, err
}

// Close closes the tunnel.
func (c *Conn) Close() error {
	if c.counters != nil && c.counters.Open.Load() > 0 {
		c.counters.Open.Add(-1)
	}
	return c.Stream.Close()
}

// LocalAddr is the local end of the libp2p connection under the tunnel.
func (c *Conn) LocalAddr() net.Addr { return maddr(c.Stream.Conn().LocalMultiaddr().String()) }

// RemoteAddr names the provider: its peer ID and the address of the libp2p
// connection under the tunnel.
func (c *Conn) RemoteAddr() net.Addr {
	return maddr(c.Stream.Conn().RemoteMultiaddr().String() + "/p2p/" + c.Stream.Conn().RemotePeer().String())
}

type maddr string

func (maddr) Network() string  { return "libp2p" }
func (a maddr) String() string { return string(a) }

var _ net.Conn = (*Conn)(nil)
