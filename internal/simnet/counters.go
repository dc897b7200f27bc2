package simnet

import (
	"strings"
	"sync"
	"sync/atomic"

	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// NumMsgTypes is the number of DHT message types (pb.Message_MessageType:
// PUT_VALUE … PING).
const NumMsgTypes = 6

// KeyClass sorts the keys DHT requests carry.
type KeyClass int

// Key classes.
const (
	KeyOther KeyClass = iota // peer IDs (lookups, refresh) and anything unregistered
	KeyTerm                  // an index term's provider key
	KeyTopic                 // a gossip topic's rendezvous key ("floodsub:" + topic)
	NumKeyClasses
)

func (c KeyClass) String() string {
	return [...]string{"other", "term", "topic"}[c]
}

// Proto sorts stream protocols for byte counts.
type Proto int

// Protocol classes.
const (
	ProtoDHT Proto = iota
	ProtoFind
	ProtoPubsub
	ProtoOther
	NumProtos
)

func (p Proto) String() string {
	return [...]string{"dht", "find", "pubsub", "other"}[p]
}

func protoClass(id protocol.ID) Proto {
	s := string(id)
	switch {
	case strings.HasSuffix(s, "/kad/1.0.0"):
		return ProtoDHT
	case strings.HasPrefix(s, "/pullnet/find/"):
		return ProtoFind
	case strings.HasPrefix(s, "/meshsub/"), strings.HasPrefix(s, "/floodsub/"):
		return ProtoPubsub
	}
	return ProtoOther
}

// Counters are one peer's traffic counts. They only grow.
type Counters struct {
	// RPCIn counts DHT requests received, by message type.
	RPCIn [NumMsgTypes]atomic.Int64
	// RPCOut counts DHT requests sent, by key class and message type
	// (topic-class requests answered locally count here too, and in
	// RPCLocal).
	RPCOut   [NumKeyClasses][NumMsgTypes]atomic.Int64
	RPCLocal atomic.Int64
	// RPCFail counts DHT requests sent that got no answer.
	RPCFail atomic.Int64
	// BytesOut counts bytes written on streams, by protocol class (the
	// identify exchange, which runs inside the mocknet host, is not
	// counted).
	BytesOut [NumProtos]atomic.Int64
	// StreamsOut counts streams opened, by protocol class.
	StreamsOut [NumProtos]atomic.Int64
	// Dials counts connections this peer set up; DeadDials its dials to
	// departed peers.
	Dials, DeadDials atomic.Int64
}

// Snapshot is a plain copy of Counters.
type Snapshot struct {
	RPCIn      [NumMsgTypes]int64
	RPCOut     [NumKeyClasses][NumMsgTypes]int64
	RPCLocal   int64
	RPCFail    int64
	BytesOut   [NumProtos]int64
	StreamsOut [NumProtos]int64
	Dials      int64
	DeadDials  int64
}

// Snapshot copies the counters.
func (c *Counters) Snapshot() Snapshot {
	var s Snapshot
	for t := range NumMsgTypes {
		s.RPCIn[t] = c.RPCIn[t].Load()
		for k := range NumKeyClasses {
			s.RPCOut[k][t] = c.RPCOut[k][t].Load()
		}
	}
	for p := range NumProtos {
		s.BytesOut[p] = c.BytesOut[p].Load()
		s.StreamsOut[p] = c.StreamsOut[p].Load()
	}
	s.RPCLocal, s.RPCFail = c.RPCLocal.Load(), c.RPCFail.Load()
	s.Dials, s.DeadDials = c.Dials.Load(), c.DeadDials.Load()
	return s
}

// Add adds o to s.
func (s *Snapshot) Add(o Snapshot) {
	for t := range NumMsgTypes {
		s.RPCIn[t] += o.RPCIn[t]
		for k := range NumKeyClasses {
			s.RPCOut[k][t] += o.RPCOut[k][t]
		}
	}
	for p := range NumProtos {
		s.BytesOut[p] += o.BytesOut[p]
		s.StreamsOut[p] += o.StreamsOut[p]
	}
	s.RPCLocal += o.RPCLocal
	s.RPCFail += o.RPCFail
	s.Dials += o.Dials
	s.DeadDials += o.DeadDials
}

// Sub returns s - o.
func (s Snapshot) Sub(o Snapshot) Snapshot {
	for t := range NumMsgTypes {
		s.RPCIn[t] -= o.RPCIn[t]
		for k := range NumKeyClasses {
			s.RPCOut[k][t] -= o.RPCOut[k][t]
		}
	}
	for p := range NumProtos {
		s.BytesOut[p] -= o.BytesOut[p]
		s.StreamsOut[p] -= o.StreamsOut[p]
	}
	s.RPCLocal -= o.RPCLocal
	s.RPCFail -= o.RPCFail
	s.Dials -= o.Dials
	s.DeadDials -= o.DeadDials
	return s
}

// RPCsOut is the number of DHT requests sent in key class k (all types).
func (s Snapshot) RPCsOut(k KeyClass) int64 {
	var n int64
	for _, v := range s.RPCOut[k] {
		n += v
	}
	return n
}

// AllRPCsOut is the number of DHT requests sent, all classes and types,
// less those answered locally.
func (s Snapshot) AllRPCsOut() int64 {
	var n int64
	for k := range NumKeyClasses {
		n += s.RPCsOut(k)
	}
	return n - s.RPCLocal
}

// AllRPCsIn is the number of DHT requests received.
func (s Snapshot) AllRPCsIn() int64 {
	var n int64
	for _, v := range s.RPCIn {
		n += v
	}
	return n
}

// AllBytesOut is the number of bytes written on streams.
func (s Snapshot) AllBytesOut() int64 {
	var n int64
	for _, v := range s.BytesOut {
		n += v
	}
	return n
}

// Keys sorts DHT keys into classes and tracks the per-peer load of chosen
// keys. It is safe for concurrent use.
type Keys struct {
	class   sync.Map // string(multihash) → KeyClass
	tracked sync.Map // string(multihash) → *KeyLoad
	slots   int
}

// Register files key (a multihash, as DHT messages carry it) under class c.
func (k *Keys) Register(key []byte, c KeyClass) { k.class.Store(string(key), c) }

// Class is the class of key.
func (k *Keys) Class(key []byte) KeyClass {
	if v, ok := k.class.Load(string(key)); ok {
		return v.(KeyClass)
	}
	return KeyOther
}

// KeyLoad counts, per peer slot, the requests for one key a peer received.
type KeyLoad struct {
	GetProviders []atomic.Int64
	AddProvider  []atomic.Int64
}

// Track starts counting, together, the requests each peer receives for
// any of keys.
func (k *Keys) Track(keys ...[]byte) *KeyLoad {
	kl := &KeyLoad{GetProviders: make([]atomic.Int64, k.slots), AddProvider: make([]atomic.Int64, k.slots)}
	for _, key := range keys {
		k.tracked.Store(string(key), kl)
	}
	return kl
}

func (k *Keys) onRequest(slot int, req *pb.Message) {
	v, ok := k.tracked.Load(string(req.GetKey()))
	if !ok || slot >= k.slots {
		return
	}
	kl := v.(*KeyLoad)
	switch req.GetType() {
	case pb.Message_GET_PROVIDERS:
		kl.GetProviders[slot].Add(1)
	case pb.Message_ADD_PROVIDER:
		kl.AddProvider[slot].Add(1)
	}
}
