package main

import (
	"context"
	"encoding/binary"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"

	"github.com/pullnet/pullnet/internal/ratings"
	"github.com/pullnet/pullnet/protocol/signed"
)

// Measuring without touching pullnet's code: announce.New takes no pubsub
// options, so instead of a pubsub tracer the bench hands announce.New a host
// whose pubsub streams count the bytes they carry and decode the RPCs they
// read (gossipsub frames every RPC with a varint length), and hands
// reputation.New a book that notes when each rating is first stored.

// isPubsub reports whether pid is one of gossipsub's (or floodsub's)
// protocols, whose streams are observed.
func isPubsub(pid protocol.ID) bool {
	s := string(pid)
	return strings.HasPrefix(s, "/meshsub/") || strings.HasPrefix(s, "/floodsub/")
}

// observer counts what every node's pubsub streams carry and when every
// node's book takes each rating.
type observer struct {
	nodes []*nodeObs

	bytesIn  atomic.Int64 // read from inbound pubsub streams, framing included
	bytesOut atomic.Int64 // written to outbound pubsub streams
	msgBytes atomic.Int64 // of bytesIn: published messages (full copies)
	ctlBytes atomic.Int64 // of bytesIn: control (IHAVE, IWANT, IDONTWANT, GRAFT, PRUNE)
	rpcs     atomic.Int64
	ihave    atomic.Int64 // message IDs announced in IHAVE, all topics and messages
	iwant    atomic.Int64
	idontw   atomic.Int64
	graft    atomic.Int64
	prune    atomic.Int64
	badFrame atomic.Int64
	msgSize  atomic.Int64 // protobuf size of one rating's pubsub message

	mu     sync.RWMutex
	byData map[string]*entry // envelope → rating
	byID   map[string]*entry // gossipsub message ID (from+seqno) → rating
	byKey  map[string]*entry // signed.Rating.Key() → rating
}

type nodeObs struct {
	idx  int
	mu   sync.Mutex
	seen map[*entry]bool // ratings this node has had a copy of on the wire
}

// entry is one published rating and what became of it.
type entry struct {
	idx       int
	publisher int
	warm      bool
	others    int // nodes other than the publisher
	start     time.Time

	copies    atomic.Int64 // full copies received on the wire, all nodes
	dups      atomic.Int64 // of those, copies a node already had (or published)
	ihave     atomic.Int64 // IHAVE entries naming it, all nodes
	iwant     atomic.Int64
	idontwant atomic.Int64

	mu       sync.Mutex
	arrivals []time.Duration // publish → stored in each other node's book
	done     chan struct{}   // closed when every other node holds it
}

func newObserver(n int) *observer {
	o := &observer{byData: map[string]*entry{}, byID: map[string]*entry{}, byKey: map[string]*entry{}}
	for i := range n {
		o.nodes = append(o.nodes, &nodeObs{idx: i, seen: map[*entry]bool{}})
	}
	return o
}

// register notes a rating about to be published; start is set by the caller
// just before Publish.
func (o *observer) register(rec signed.RatingRecord, idx, publisher int, warm bool) *entry {
	e := &entry{idx: idx, publisher: publisher, warm: warm, others: len(o.nodes) - 1, done: make(chan struct{}), start: time.Now()}
	o.mu.Lock()
	o.byData[string(rec.Envelope)] = e
	o.byKey[rec.Rating.Key()] = e
	o.mu.Unlock()
	return e
}

// arrived: node stored the rating with key for the first time.
func (o *observer) arrived(node int, key string) {
	o.mu.RLock()
	e := o.byKey[key]
	o.mu.RUnlock()
	if e == nil || e.publisher == node {
		return
	}
	d := time.Since(e.start)
	e.mu.Lock()
	e.arrivals = append(e.arrivals, d)
	if len(e.arrivals) == e.others {
		close(e.done)
	}
	e.mu.Unlock()
}

// reached is how many other nodes hold e, and their arrival times, sorted
// by arrival.
func (e *entry) reached() []time.Duration {
	e.mu.Lock()
	out := append([]time.Duration(nil), e.arrivals...)
	e.mu.Unlock()
	slices.Sort(out)
	return out
}

// frame handles one RPC read by node.
func (o *observer) frame(node *nodeObs, b []byte) {
	var rpc pb.RPC
	if err := proto.Unmarshal(b, &rpc); err != nil {
		o.badFrame.Add(1)
		return
	}
	o.rpcs.Add(1)
	for _, m := range rpc.GetPublish() {
		o.msgBytes.Add(int64(proto.Size(m)))
		o.mu.RLock()
		e := o.byData[string(m.GetData())]
		o.mu.RUnlock()
		if e == nil {
			continue
		}
		id := string(m.GetFrom()) + string(m.GetSeqno()) // pubsub.DefaultMsgIdFn
		o.mu.RLock()
		_, known := o.byID[id]
		o.mu.RUnlock()
		if !known {
			o.mu.Lock()
			o.byID[id] = e
			o.mu.Unlock()
		}
		e.copies.Add(1)
		o.msgSize.Store(int64(proto.Size(m)))
		node.mu.Lock()
		had := node.seen[e] || node.idx == e.publisher
		node.seen[e] = true
		node.mu.Unlock()
		if had {
			e.dups.Add(1)
		}
	}
	c := rpc.GetControl()
	if c == nil {
		return
	}
	o.ctlBytes.Add(int64(proto.Size(c)))
	o.graft.Add(int64(len(c.GetGraft())))
	o.prune.Add(int64(len(c.GetPrune())))
	count := func(ids []string, total *atomic.Int64, per func(*entry) *atomic.Int64) {
		total.Add(int64(len(ids)))
		o.mu.RLock()
		defer o.mu.RUnlock()
		for _, id := range ids {
			if e := o.byID[id]; e != nil {
				per(e).Add(1)
			}
		}
	}
	for _, ih := range c.GetIhave() {
		count(ih.GetMessageIDs(), &o.ihave, func(e *entry) *atomic.Int64 { return &e.ihave })
	}
	for _, iw := range c.GetIwant() {
		count(iw.GetMessageIDs(), &o.iwant, func(e *entry) *atomic.Int64 { return &e.iwant })
	}
	for _, dw := range c.GetIdontwant() {
		count(dw.GetMessageIDs(), &o.idontw, func(e *entry) *atomic.Int64 { return &e.idontwant })
	}
}

// observedHost is the host announce.New gets: pubsub streams, inbound and
// outbound, are wrapped; everything else passes through.
type observedHost struct {
	host.Host
	obs  *observer
	node *nodeObs
}

func (h *observedHost) wrap(handler network.StreamHandler) network.StreamHandler {
	return func(s network.Stream) { handler(&inStream{Stream: s, h: h}) }
}

func (h *observedHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	if isPubsub(pid) {
		handler = h.wrap(handler)
	}
	h.Host.SetStreamHandler(pid, handler)
}

func (h *observedHost) SetStreamHandlerMatch(pid protocol.ID, m func(protocol.ID) bool, handler network.StreamHandler) {
	if isPubsub(pid) {
		handler = h.wrap(handler)
	}
	h.Host.SetStreamHandlerMatch(pid, m, handler)
}

func (h *observedHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil || !isPubsub(s.Protocol()) {
		return s, err
	}
	return &outStream{Stream: s, h: h}, nil
}

// inStream is an inbound pubsub stream: gossipsub reads RPCs from it.
type inStream struct {
	network.Stream
	h      *observedHost
	buf    []byte
	broken bool
}

// maxFrame bounds a frame the parser buffers; pubsub's own cap
// (announce.MaxMessageSize) is far below it.
const maxFrame = 4 << 20

func (s *inStream) Read(b []byte) (int, error) {
	n, err := s.Stream.Read(b)
	if n > 0 {
		s.h.obs.bytesIn.Add(int64(n))
		if !s.broken {
			s.feed(b[:n])
		}
	}
	return n, err
}

// feed appends p and hands every complete frame to the observer. One
// goroutine (pubsub's reader) reads a stream, so no lock is needed.
func (s *inStream) feed(p []byte) {
	s.buf = append(s.buf, p...)
	off := 0
	for {
		l, k := binary.Uvarint(s.buf[off:])
		if k == 0 {
			break // length not complete yet
		}
		if k < 0 || l > maxFrame {
			s.broken = true
			s.h.obs.badFrame.Add(1)
			s.buf = nil
			return
		}
		if uint64(len(s.buf)-off-k) < l {
			break
		}
		s.h.obs.frame(s.h.node, s.buf[off+k:off+k+int(l)])
		off += k + int(l)
	}
	s.buf = s.buf[:copy(s.buf, s.buf[off:])]
}

// outStream is an outbound pubsub stream: gossipsub writes RPCs to it.
type outStream struct {
	network.Stream
	h *observedHost
}

func (s *outStream) Write(b []byte) (int, error) {
	n, err := s.Stream.Write(b)
	s.h.obs.bytesOut.Add(int64(n))
	return n, err
}

// trackedBook is the book reputation.New gets: a real ratings.Book that
// tells the observer when it first stores a rating.
type trackedBook struct {
	*ratings.Book
	node int
	obs  *observer
}

func (b *trackedBook) Put(ctx context.Context, rec signed.RatingRecord) (ratings.Outcome, error) {
	out, err := b.Book.Put(ctx, rec)
	if err == nil && out == ratings.Added {
		b.obs.arrived(b.node, rec.Rating.Key())
	}
	return out, err
}
