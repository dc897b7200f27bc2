package simnet

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio"
	"github.com/libp2p/go-msgio/pbio"
	"google.golang.org/protobuf/proto"
)

// dhtReadTimeout is how long a request waits for its answer, as
// go-libp2p-kad-dht's own sender does.
const dhtReadTimeout = 10 * time.Second

// oneShotSender is a DHT message sender that opens a stream per request
// and closes it after the answer. kad-dht's default sender keeps a stream
// open to every peer it has queried (three goroutines each on mocknet),
// which at thousands of nodes costs more memory than the nodes themselves.
// It also counts requests per key class and per operation, and answers
// gossip-topic requests locally when the net says so.
type oneShotSender struct {
	h      host.Host
	protos []protocol.ID
	p      *Peer
	n      *Net
}

func (n *Net) senderFor(p *Peer) func(h host.Host, protos []protocol.ID) pb.MessageSenderWithDisconnect {
	return func(h host.Host, protos []protocol.ID) pb.MessageSenderWithDisconnect {
		return &oneShotSender{h: h, protos: protos, p: p, n: n}
	}
}

func (m *oneShotSender) OnDisconnect(context.Context, peer.ID) {}

// count files one request and reports whether it is to be answered locally.
func (m *oneShotSender) count(ctx context.Context, pmes *pb.Message) (local bool) {
	cls := m.n.Keys.Class(pmes.GetKey())
	t := int(pmes.GetType())
	if t < 0 || t >= NumMsgTypes {
		t = 0
	}
	m.p.C.RPCOut[cls][t].Add(1)
	if cls == KeyTopic && m.n.opts.LocalTopics {
		m.p.C.RPCLocal.Add(1)
		return true
	}
	if op := OpFrom(ctx); op != nil {
		op.RPCs.Add(1)
	}
	return false
}

func (m *oneShotSender) SendRequest(ctx context.Context, to peer.ID, pmes *pb.Message) (*pb.Message, error) {
	if m.count(ctx, pmes) {
		// An empty answer, after the link's round trip.
		var rtt time.Duration
		if q := m.n.PeerByID(to); q != nil {
			rtt = 2 * m.n.latency(m.p, q)
		}
		if err := sleepCtx(ctx, rtt); err != nil {
			return nil, err
		}
		return &pb.Message{Type: pmes.GetType(), Key: pmes.GetKey()}, nil
	}
	s, err := m.h.NewStream(ctx, to, m.protos...)
	if err != nil {
		m.p.C.RPCFail.Add(1)
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()
	timer := time.AfterFunc(dhtReadTimeout, func() { _ = s.Reset() })
	defer timer.Stop()
	if err := pbio.NewDelimitedWriter(s).WriteMsg(pmes); err != nil {
		_ = s.Reset()
		m.p.C.RPCFail.Add(1)
		return nil, err
	}
	start := time.Now()
	r := msgio.NewVarintReaderSize(s, network.MessageSizeMax)
	b, err := r.ReadMsg()
	if err != nil {
		_ = s.Reset()
		m.p.C.RPCFail.Add(1)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("read dht response: %w", err)
	}
	resp := new(pb.Message)
	err = proto.Unmarshal(b, resp)
	r.ReleaseMsg(b)
	if err != nil {
		_ = s.Reset()
		m.p.C.RPCFail.Add(1)
		return nil, err
	}
	_ = s.Close()
	m.h.Peerstore().RecordLatency(to, time.Since(start))
	if len(resp.GetProviderPeers()) > 0 {
		if op := OpFrom(ctx); op != nil {
			op.sawProvider()
		}
	}
	return resp, nil
}

func (m *oneShotSender) SendMessage(ctx context.Context, to peer.ID, pmes *pb.Message) error {
	if m.count(ctx, pmes) {
		return nil
	}
	s, err := m.h.NewStream(ctx, to, m.protos...)
	if err != nil {
		m.p.C.RPCFail.Add(1)
		return err
	}
	if err := pbio.NewDelimitedWriter(s).WriteMsg(pmes); err != nil {
		_ = s.Reset()
		m.p.C.RPCFail.Add(1)
		return err
	}
	return s.Close() // held back by the stream wrapper until the message arrives
}

// Op follows one find or advertise through the DHT: the context it runs
// under carries it (WithOp), and the harness counts what it costs.
type Op struct {
	Start time.Time
	// RPCs counts the DHT requests sent for the operation.
	RPCs atomic.Int64
	// Asks counts the /pullnet/find streams it opened.
	Asks atomic.Int64
	// firstProv is when the first provider record arrived, nanoseconds
	// after Start; 0 if none has.
	firstProv atomic.Int64
}

// NewOp starts following an operation now.
func NewOp() *Op { return &Op{Start: time.Now()} }

func (o *Op) sawProvider() {
	d := max(int64(time.Since(o.Start)), 1)
	o.firstProv.CompareAndSwap(0, d)
}

// FirstProvider is how long after Start the first provider record arrived,
// and whether one did.
func (o *Op) FirstProvider() (time.Duration, bool) {
	d := o.firstProv.Load()
	return time.Duration(d), d > 0
}

type opKey struct{}

// WithOp makes ctx carry op.
func WithOp(ctx context.Context, op *Op) context.Context { return context.WithValue(ctx, opKey{}, op) }

// OpFrom is the Op ctx carries, or nil.
func OpFrom(ctx context.Context) *Op {
	op, _ := ctx.Value(opKey{}).(*Op)
	return op
}
