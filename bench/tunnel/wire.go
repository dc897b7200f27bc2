package main

// What the bench's processes say to each other. Every role prints one JSON
// object per line on stdout; the client takes commands as JSON lines on
// stdin. A role ends when its stdin closes.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// The sink's modes: the first byte a client sends on a connection.
const (
	// modePush: an 8-byte big-endian length follows, then that many bytes;
	// the sink reads them all and answers with the same 8-byte length.
	modePush = 'P'
	// modeEcho: the sink answers the mode byte itself at once, then echoes
	// every byte it reads. The echoed mode byte is the "first byte of a
	// response" the TTFB figures time.
	modeEcho = 'E'
)

// bannerText is what the banner service writes as soon as it accepts a
// connection, before reading anything (as SSH, SMTP or MySQL servers do).
const bannerText = "SSH-2.0-pullnet-bench-banner\r\n"

// copyBuf is the size of every read and write buffer in the client and the
// sink.
const copyBuf = 256 << 10

type sinkReady struct {
	Addr   string `json:"addr"`
	Banner string `json:"banner"`
}

type clientCmd struct {
	Op   string `json:"op"` // "push" or "rtt"
	Addr string `json:"addr"`
	Size int64  `json:"size,omitempty"`
	N    int    `json:"n,omitempty"`
}

type clientResult struct {
	Err     string  `json:"err,omitempty"`
	Bytes   int64   `json:"bytes,omitempty"`
	Nanos   int64   `json:"ns,omitempty"`
	Samples []int64 `json:"samples,omitempty"` // round trips, ns
}

type providerReady struct {
	ID     string   `json:"id"`
	Addrs  []string `json:"addrs"`
	Sink   string   `json:"sink"`
	Banner string   `json:"banner,omitempty"`
}

type consumerReady struct {
	Listen string `json:"listen"`
	// Conn is the transport and remote address of the consumer's
	// connection to the provider, to check which transport carries the
	// tunnels.
	Conn string `json:"conn"`
}

// ttfbResult is what a consumer in TTFB mode measured, all in ns.
type ttfbResult struct {
	Conn string `json:"conn"`
	// New is node.New; ColdConnect is from New returning to Connect
	// returning (bootstrap dial, DHT lookup, find, connect request);
	// ColdFirst is from New returning to the first byte through the
	// forward. ConnectTries counts Connect calls (the first ones fail while
	// the bootstrap connection is still coming up).
	New, ColdConnect, ColdFirst int64
	ConnectTries                int
	// RTT is libp2p ping over the (relayed) connection.
	RTT []int64 `json:"rtt"`
	// Warm: a new tunnel over the live connection, from the application's
	// connect to the forward to the first byte back.
	Warm []int64 `json:"warm"`
	// Fresh: the same with no connection to the provider (the consumer
	// restarted from its data folder before each try): libp2p dial,
	// handshakes, identify, tunnel.
	Fresh []int64 `json:"fresh"`
	// HostConnect: host.Connect alone, likewise with no connection (libp2p
	// dial, security and muxer handshakes, identify).
	HostConnect []int64 `json:"host_connect"`
	// SwarmDial: the network's DialPeer alone (no wait for identify).
	SwarmDial []int64 `json:"swarm_dial"`
	// BannerOK/BannerTries: tunnels to a server-speaks-first service whose
	// greeting arrived intact.
	BannerOK, BannerTries int
	BannerErr             string `json:"banner_err,omitempty"`
}

func writeHeader(w io.Writer, mode byte, size int64) error {
	var h [9]byte
	h[0] = mode
	binary.BigEndian.PutUint64(h[1:], uint64(size))
	_, err := w.Write(h[:])
	return err
}

// parseSize reads 1GiB, 256MiB, 64KiB, 1000000 or 1e9.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suf) {
			s, mult = strings.TrimSuffix(s, u.suf), u.m
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 {
		return 0, fmt.Errorf("size %q: want e.g. 1GiB, 256MiB or a byte count", s)
	}
	return int64(f * float64(mult)), nil
}

var errTimeout = errors.New("timed out")

func ns(d time.Duration) int64 { return int64(d) }
