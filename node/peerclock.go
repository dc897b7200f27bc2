package node

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/peer"
)

// maxPeerClocks bounds how many peers' clock readings the node keeps.
const maxPeerClocks = 1024

// startPeerClocks follows identify: each peer sends a signed peer record
// whose seq is, in go-libp2p, the time its owner made it, by the owner's
// clock. How far that time is ahead of this node's clock on arrival is a
// lower bound on how far this clock is behind the peer's; Doctor's clock
// check reads it.
func (n *Node) startPeerClocks() error {
	sub, err := n.host.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		return err
	}
	n.clockAhead = map[peer.ID]time.Duration{}
	n.goRun(func(ctx context.Context) {
		defer sub.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-sub.Out():
				if !ok {
					return
				}
				n.notePeerClock(e.(event.EvtPeerIdentificationCompleted), time.Now())
			}
		}
	})
	return nil
}

func (n *Node) notePeerClock(e event.EvtPeerIdentificationCompleted, now time.Time) {
	if e.SignedPeerRecord == nil {
		return
	}
	rec, err := e.SignedPeerRecord.Record()
	if err != nil {
		return
	}
	pr, ok := rec.(*peer.PeerRecord)
	// A seq that is not a plausible Unix time in nanoseconds (some
	// implementations count) says nothing about the clock.
	if !ok || pr.PeerID != e.Peer || pr.Seq < uint64(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()) || pr.Seq >= 1<<63 {
		return
	}
	ahead := time.Unix(0, int64(pr.Seq)).Sub(now)
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, known := n.clockAhead[e.Peer]; !known && len(n.clockAhead) >= maxPeerClocks {
		for p := range n.clockAhead { // forget one at random
			delete(n.clockAhead, p)
			break
		}
	}
	n.clockAhead[e.Peer] = ahead
}
