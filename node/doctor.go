package node

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p-kad-dht/amino"
	dhtpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pullnet/pullnet/internal/termkeys"
	"github.com/pullnet/pullnet/resource"
)

// DoctorReport answers "can others find and reach this node?". OK is true
// when every check is.
type DoctorReport struct {
	OK     bool
	Checks []DoctorCheck
}

// DoctorCheck is one finding of Doctor.
type DoctorCheck struct {
	// Name is "peers", "reachability", "clock", or "findable <resource ID>"
	// (one for each of the node's live resources).
	Name string
	OK   bool
	// Detail says what was found, in a line.
	Detail string
	// Fix says what to do about a failed check; empty when OK.
	Fix string
}

// Limits that keep Doctor quick however many resources the node has.
const (
	doctorMaxResources  = 20 // resources checked; the rest are noted
	doctorTermsPerRes   = 3  // the id term, the kind and the first tag
	doctorAskPeers      = 10 // closest peers asked about each term
	doctorParallelTerms = 4  // term checks at once
	// doctorMaxSkew is how far peers' clocks may be ahead of this one.
	doctorMaxSkew = time.Minute
)

// provideValidity is how long a provider record lives in the DHT after it
// is announced, unless announced again.
const provideValidity = amino.DefaultProvideValidity

// Doctor checks whether others can find and reach the node: that it has
// peers, that the DHT peers closest to each of its resources' keys hold
// provider records naming it (it asks them), whether peers can dial it, and
// whether its clock is behind its peers'. It asks the network, so it takes
// up to a few seconds; ctx bounds it, and checks still running when ctx
// ends fail with a detail that says so.
func (n *Node) Doctor(ctx context.Context) DoctorReport {
	checks := []DoctorCheck{n.doctorPeers(), n.doctorReachability(), n.doctorClock()}
	checks = append(checks, n.doctorFindable(ctx)...)
	rep := DoctorReport{OK: true, Checks: checks}
	for _, c := range checks {
		rep.OK = rep.OK && c.OK
	}
	return rep
}

func (n *Node) doctorPeers() DoctorCheck {
	connected := len(n.host.Network().Peers())
	table := n.dht.RoutingTable().Size()
	c := DoctorCheck{Name: "peers", OK: connected > 0 && table > 0,
		Detail: fmt.Sprintf("%d connected, routing table %d", connected, table)}
	switch {
	case connected == 0:
		c.Fix = "connect to the network: run pulld with --bootstrap <multiaddr of a running peer>, or with mDNS on a LAN that has one"
	case table == 0:
		c.Fix = "none of the connected peers is a pullnet DHT server: bootstrap from a peer that runs pulld"
	}
	return c
}

func (n *Node) doctorReachability() DoctorCheck {
	relays := len(n.RelayAddrs())
	c := DoctorCheck{Name: "reachability", OK: true}
	switch n.Reachability() {
	case "public":
		c.Detail = "public: peers can dial this node directly"
	case "private":
		if relays > 0 {
			c.Detail = fmt.Sprintf("behind NAT, reachable through %d relay address(es); hole punching upgrades to direct connections where it can", relays)
			break
		}
		c.OK = false
		c.Detail = "behind NAT and no relay address: peers cannot reach this node"
		c.Fix = "forward the listen port on your router, or connect to a peer that runs pulld --relay-service"
	default:
		c.Detail = "unknown: AutoNAT has not decided yet (it needs peers that can dial back)"
		if relays > 0 {
			c.Detail += fmt.Sprintf("; %d relay address(es)", relays)
		}
	}
	return c
}

// doctorClock compares the node's clock with its connected peers', as
// their signed peer records show them (see startPeerClocks). A record dated
// in this clock's future shows this clock is behind that peer's; a clock
// that runs ahead cannot be seen this way.
func (n *Node) doctorClock() DoctorCheck {
	c := DoctorCheck{Name: "clock", OK: true}
	var ahead []time.Duration
	n.mu.Lock()
	for _, p := range n.host.Network().Peers() {
		if d, ok := n.clockAhead[p]; ok {
			ahead = append(ahead, d)
		}
	}
	n.mu.Unlock()
	if len(ahead) == 0 {
		c.Detail = "no peer timestamps to compare with"
		return c
	}
	slices.Sort(ahead)
	behind := 0
	for _, d := range ahead {
		if d > doctorMaxSkew {
			behind++
		}
	}
	// The median, so that one peer with a wrong clock does not fail the
	// check: at least half the peers must be ahead.
	if med := ahead[len(ahead)/2]; med > doctorMaxSkew {
		c.OK = false
		c.Detail = fmt.Sprintf("behind %d of %s by more than %v (median %v)", behind, doctorCount(len(ahead), "peer"), doctorMaxSkew, med.Round(time.Second))
		c.Fix = "set the system clock right and keep it synchronized (NTP, e.g. timedatectl set-ntp true); signatures and expiry times depend on it"
		return c
	}
	c.Detail = fmt.Sprintf("not behind %s (by their signed peer records, which cannot show a clock running ahead)", doctorCount(len(ahead), "peer"))
	if behind > 0 {
		c.Detail = fmt.Sprintf("behind %d of %s by more than %v; the others agree with this clock", behind, doctorCount(len(ahead), "peer"), doctorMaxSkew)
	}
	return c
}

// termHolding is what the closest peers to one term's key said.
type termHolding struct {
	term string
	// asked peers were among the closest; answered of them replied, and
	// held of those named this node as a provider.
	held, answered, asked int
	err                   error
}

func (n *Node) doctorFindable(ctx context.Context) []DoctorCheck {
	recs := n.catalog.Live()
	skipped := 0
	if len(recs) > doctorMaxResources {
		skipped = len(recs) - doctorMaxResources
		recs = recs[:doctorMaxResources]
	}
	pm, err := dhtpb.NewProtocolMessenger(n.dht.MessageSender())
	if err != nil { // cannot happen: it fails only on a bad option
		return []DoctorCheck{{Name: "findable", Detail: err.Error(), Fix: "report this as a bug"}}
	}
	// Ask about each distinct term once, a few at a time.
	var terms []string
	perRes := make([][]string, len(recs))
	for i, rec := range recs {
		perRes[i] = doctorTerms(rec.Resource)
		for _, t := range perRes[i] {
			if !slices.Contains(terms, t) {
				terms = append(terms, t)
			}
		}
	}
	results := make(map[string]termHolding, len(terms))
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, doctorParallelTerms)
	)
	for _, t := range terms {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			h := n.askHolders(ctx, pm, t)
			mu.Lock()
			results[t] = h
			mu.Unlock()
		}()
	}
	wg.Wait()

	now := time.Now()
	checks := make([]DoctorCheck, 0, len(recs)+1)
	for i, rec := range recs {
		checks = append(checks, n.findableCheck(rec.Resource.ID, perRes[i], results, now))
	}
	if skipped > 0 {
		checks = append(checks, DoctorCheck{Name: "findable", OK: true,
			Detail: fmt.Sprintf("checked the first %d resources; %d more not checked", doctorMaxResources, skipped)})
	}
	return checks
}

// doctorTerms are the terms Doctor checks for r: the ones a finder most
// needs (the ID, the kind, the first tag), not every word.
func doctorTerms(r resource.Resource) []string {
	terms := []string{resource.Term(resource.TermID, r.ID), resource.Term(resource.TermKind, r.Kind)}
	if len(r.Tags) > 0 {
		terms = append(terms, resource.Term(resource.TermTag, r.Tags[0]))
	}
	return terms[:min(len(terms), doctorTermsPerRes)]
}

// askHolders finds the DHT peers closest to term's key and asks each of the
// nearest whether it holds a provider record naming this node.
func (n *Node) askHolders(ctx context.Context, pm *dhtpb.ProtocolMessenger, term string) termHolding {
	h := termHolding{term: term}
	// Every provider of a term provides under its home key, rare or not.
	key := termkeys.Key(term, termkeys.Home(term, n.host.ID())).Hash()
	closest, err := n.dht.GetClosestPeers(ctx, string(key))
	if err != nil {
		h.err = err
		return h
	}
	closest = slices.DeleteFunc(closest, func(p peer.ID) bool { return p == n.host.ID() })
	if len(closest) > doctorAskPeers {
		closest = closest[:doctorAskPeers]
	}
	h.asked = len(closest)
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for _, p := range closest {
		wg.Add(1)
		go func() {
			defer wg.Done()
			provs, _, err := pm.GetProviders(ctx, p, key)
			if err != nil {
				return
			}
			mine := slices.ContainsFunc(provs, func(ai *peer.AddrInfo) bool { return ai.ID == n.host.ID() })
			mu.Lock()
			defer mu.Unlock()
			h.answered++
			if mine {
				h.held++
			}
		}()
	}
	wg.Wait()
	return h
}

func (n *Node) findableCheck(id string, terms []string, results map[string]termHolding, now time.Time) DoctorCheck {
	c := DoctorCheck{Name: "findable " + id, OK: true}
	var parts, missing []string
	for _, t := range terms {
		h := results[t]
		if h.held == 0 {
			c.OK = false
		}
		switch {
		case h.err != nil && t == terms[0]:
			parts = append(parts, "no DHT peers to ask ("+h.err.Error()+")")
		case t == terms[0]:
			p := fmt.Sprintf("held by %d of %d closest peers", h.held, h.answered)
			if h.asked > h.answered {
				p += fmt.Sprintf(" (%d more did not answer)", h.asked-h.answered)
			}
			parts = append(parts, p)
		case h.held == 0 && results[terms[0]].err == nil:
			missing = append(missing, fmt.Sprintf("%s (0 of %d)", t, h.answered))
		}
	}
	if len(missing) > 0 {
		parts = append(parts, "not held: "+strings.Join(missing, ", "))
	}
	// The oldest announcement of the resource's terms is the one that
	// expires first.
	var oldest time.Time
	announced := true
	for _, t := range terms {
		at, ok := n.prov.announcedAt(t)
		if !ok {
			announced = false
			break
		}
		if oldest.IsZero() || at.Before(oldest) {
			oldest = at
		}
	}
	next := n.nextReprovide(now)
	if announced {
		parts = append(parts, fmt.Sprintf("announced %s ago, next reprovide in %s, records expire in %s",
			roughly(now.Sub(oldest)), roughly(next.Sub(now)), roughly(oldest.Add(provideValidity).Sub(now))))
	} else {
		parts = append(parts, "not announced yet in this run")
	}
	c.Detail = strings.Join(parts, "; ")
	if c.OK {
		return c
	}
	switch {
	case len(n.host.Network().Peers()) == 0 || results[terms[0]].err != nil:
		c.Fix = "connect to the network first (see the peers check); pulld then announces the resource by itself"
	case !announced:
		c.Fix = "pulld has not managed to announce it yet and keeps retrying: wait a minute, or restart pulld to announce again"
	default:
		c.Fix = fmt.Sprintf("the closest peers have lost the record (they may have restarted): wait for the reprovide in %s, or restart pulld to announce again", roughly(next.Sub(now)))
	}
	return c
}

// announcedAt is when term was last announced successfully.
func (p *provider) announcedAt(term string) (time.Time, bool) {
	p.doneMu.Lock()
	defer p.doneMu.Unlock()
	at, ok := p.done[term]
	return at, ok
}

// nextReprovide is the provider loop's next tick after now: it ticks every
// ReprovideInterval from the node's start.
func (n *Node) nextReprovide(now time.Time) time.Time {
	every := n.prov.interval
	ticks := now.Sub(n.started)/every + 1
	return n.started.Add(ticks * every)
}

// roughly shows a duration to the second below a minute and to the minute
// above: "42s", "3m", "47h58m".
func roughly(d time.Duration) string {
	if d < time.Minute {
		return d.Round(time.Second).String()
	}
	s := strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// doctorCount shows a count of things: "1 peer", "3 peers".
func doctorCount(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
