package controltest

import (
	"context"
	"fmt"

	"github.com/pullnet/pullnet/node"
)

// Doctor calls DoctorFunc when it is set. Otherwise it reports like a node
// on a network that holds whatever it announces: peers are fine when
// Connected is not empty, reachability fails only when Reach is "private"
// with no Relays, and each resource is findable when there are peers.
func (b *Backend) Doctor(ctx context.Context) node.DoctorReport {
	if b.DoctorFunc != nil {
		return b.DoctorFunc(ctx)
	}
	peers := len(b.Connected)
	checks := []node.DoctorCheck{{Name: "peers", OK: peers > 0,
		Detail: fmt.Sprintf("%d connected, routing table %d", peers, peers)}}
	if peers == 0 {
		checks[0].Fix = "connect to the network: run pulld with --bootstrap <multiaddr of a running peer>"
	}
	reach := node.DoctorCheck{Name: "reachability", OK: true, Detail: b.Reachability()}
	if b.Reachability() == "private" && len(b.Relays) == 0 {
		reach.OK, reach.Fix = false, "forward the listen port on your router, or connect to a peer that runs pulld --relay-service"
	}
	checks = append(checks, reach, node.DoctorCheck{Name: "clock", OK: true, Detail: "no peer timestamps to compare with"})
	for _, r := range b.Resources() {
		c := node.DoctorCheck{Name: "findable " + r.ID, OK: peers > 0,
			Detail: fmt.Sprintf("held by %d of %d closest peers", peers, peers)}
		if !c.OK {
			c.Fix = "connect to the network first (see the peers check); pulld then announces the resource by itself"
		}
		checks = append(checks, c)
	}
	rep := node.DoctorReport{OK: true, Checks: checks}
	for _, c := range checks {
		rep.OK = rep.OK && c.OK
	}
	return rep
}
