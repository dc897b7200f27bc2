package node

import (
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
)

func TestTCPFirst(t *testing.T) {
	tcp := ma.StringCast("/ip4/1.2.3.4/tcp/4001")
	quic := ma.StringCast("/ip4/1.2.3.4/udp/4001/quic-v1")
	delays := map[string]time.Duration{}
	for _, a := range tcpFirst([]ma.Multiaddr{quic, tcp}) {
		delays[a.Addr.String()] = a.Delay
	}
	if delays[tcp.String()] != 0 || delays[quic.String()] < 250*time.Millisecond {
		t.Fatalf("delays = %v; want TCP at once, QUIC after 250ms", delays)
	}
	// Without a TCP address, go-libp2p's own ranking stands.
	only := tcpFirst([]ma.Multiaddr{quic})
	if len(only) != 1 || only[0].Delay != 0 {
		t.Fatalf("QUIC alone: %v", only)
	}
}
