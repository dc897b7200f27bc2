package simnet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pullnet/pullnet/internal/termkeys"
	"github.com/pullnet/pullnet/node"
	"github.com/pullnet/pullnet/protocol/announce"
	"github.com/pullnet/pullnet/protocol/reputation"
	"github.com/pullnet/pullnet/resource"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// Workload is what the simulated participants do.
type Workload struct {
	// Resources each peer advertises at the start, each with Tags tags
	// drawn without repetition from a vocabulary of Vocab tags with Zipf
	// popularity (exponent Zipf > 1), and one of Kinds kinds.
	Resources, Tags, Vocab, Kinds int
	Zipf                          float64
	// Advertisers is the fraction of peers that advertise resources at
	// the start (every peer when 0 or 1; peers joining under churn always
	// advertise).
	Advertisers float64
	// FindRate is finds per second, network-wide, from random live peers,
	// during FindTime; RareShare of them look up a random resource's ID
	// (a term with one provider), the rest a tag drawn by the same Zipf
	// popularity. Each find wants FindLimit results within FindTimeout.
	FindRate    float64
	FindTime    time.Duration
	RareShare   float64
	FindLimit   int
	FindTimeout time.Duration
	// Parallel caps concurrent operations (advertises, finds).
	Parallel int
	// Probes is how many advertise-to-findable measurements to take: a
	// peer advertises a resource with a fresh tag and another peer finds
	// it again and again until it appears.
	Probes int
	// RestTime is the window over which traffic at rest is measured.
	RestTime time.Duration
	// Churn lists fractions of the peers replaced each ChurnPeriod (for
	// ChurnPeriods periods each), with finds going on.
	Churn        []float64
	ChurnPeriod  time.Duration
	ChurnPeriods int
	// Hot runs the hot-term experiment: HotProviders peers advertise a
	// resource tagged "hot"; finds for it arrive at HotRate per second for
	// HotTime, with finds for rare terms (a resource ID) at a quarter of
	// that rate for comparison.
	Hot          bool
	HotProviders int
	HotRate      float64
	HotTime      time.Duration
	// Withdraw is the fraction of resources withdrawn after the finds
	// (pullnet only); finds for them follow, and must not return them.
	Withdraw float64
	// AfterSetup, when set, is called once every peer has advertised
	// (e.g. to take a heap profile).
	AfterSetup func(*Net) `json:"-"`
}

// DefaultWorkload is a workload for n peers.
func DefaultWorkload(n int) Workload {
	return Workload{Resources: 2, Tags: 3, Vocab: max(100, n), Kinds: 8, Zipf: 1.2,
		FindRate: 20, FindTime: 30 * time.Second, RareShare: 0.25, FindLimit: 10, FindTimeout: 10 * time.Second,
		Parallel: 64, Probes: 20, RestTime: 30 * time.Second,
		ChurnPeriod: 20 * time.Second, ChurnPeriods: 2,
		HotProviders: 1000, HotRate: 10, HotTime: 30 * time.Second}
}

var kindNames = []string{"dataset", "service", "compute", "model", "skill", "person", "file", "paper",
	"video", "sensor", "course", "api", "notebook", "book", "tool", "place"}

// HotTag is the tag of the hot-term experiment.
const HotTag = "hot"

// resourceFor is peer slot's j-th resource: the same in every run of a
// seed, pullnet or baseline.
func (w Workload) resourceFor(seed int64, slot, j int) resource.Resource {
	r := rand.New(rand.NewPCG(uint64(seed), uint64(slot)<<20|uint64(j)))
	z := rand.NewZipf(r, w.Zipf, 1, uint64(w.Vocab-1))
	seen := map[string]bool{}
	var tags []string
	for tries := 0; len(tags) < w.Tags && tries < 100; tries++ {
		t := fmt.Sprintf("t%d", z.Uint64())
		if !seen[t] {
			seen[t] = true
			tags = append(tags, t)
		}
	}
	return resource.Resource{Kind: kindNames[r.IntN(min(w.Kinds, len(kindNames)))], Name: "x", Tags: tags,
		Handle: fmt.Sprintf("r%d", j)}
}

// system is what a run drives: pullnet nodes or the baseline DHT.
type system interface {
	// advertise publishes r and returns its ID once it is announced.
	advertise(ctx context.Context, p *Peer, r resource.Resource) (string, error)
	// find looks term up and calls hit for each result until limit.
	find(ctx context.Context, p *Peer, term string, limit int, hit func(id string, provider peer.ID)) error
	withdraw(ctx context.Context, p *Peer, id string) error
	// resultsPerResource: pullnet's results are resources, the
	// baseline's are providers.
	perResource() bool
}

type pullnetSys struct{}

func (pullnetSys) perResource() bool { return true }

func (pullnetSys) advertise(ctx context.Context, p *Peer, r resource.Resource) (string, error) {
	r.ID = "" // new: the node derives the ID from its handle
	res, err := p.Node.Advertise(ctx, r)
	if err != nil {
		return "", err
	}
	return res.ID, p.Node.WaitAnnounced(ctx, res.ID)
}

func (pullnetSys) find(ctx context.Context, p *Peer, term string, limit int, hit func(string, peer.ID)) error {
	for res, err := range p.Node.Find(ctx, term, node.FindOptions{Limit: limit}) {
		if err != nil {
			return err
		}
		hit(res.Resource.ID, res.Provider)
	}
	return nil
}

func (pullnetSys) withdraw(ctx context.Context, p *Peer, id string) error {
	return p.Node.Withdraw(ctx, id)
}

// baselineSys does what kubo does: one provider record per term key,
// found with FindProviders; a result is a provider.
type baselineSys struct{}

func (baselineSys) perResource() bool { return false }

func (baselineSys) advertise(ctx context.Context, p *Peer, r resource.Resource) (string, error) {
	r.ID = resource.NewID(p.ID.String(), r.Handle)
	terms := r.IndexTerms()
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
		sem   = make(chan struct{}, 4) // as pullnet's provider
	)
	for _, t := range terms {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var err error
			for try := 0; try < 3; try++ {
				if err = p.DHT.Provide(ctx, resource.TermCID(t), true); err == nil || ctx.Err() != nil {
					break
				}
			}
			if err != nil {
				errMu.Lock()
				first = errors.Join(first, err)
				errMu.Unlock()
			}
		}()
	}
	wg.Wait()
	return r.ID, first
}

func (baselineSys) find(ctx context.Context, p *Peer, term string, limit int, hit func(string, peer.ID)) error {
	for ai := range p.DHT.FindProvidersAsync(ctx, resource.TermCID(term), limit) {
		hit("", ai.ID)
	}
	return nil
}

func (baselineSys) withdraw(context.Context, *Peer, string) error { return nil }

// catalog is the harness's ground truth: which resources exist under which
// terms, who owns them, and which are withdrawn.
type catalog struct {
	mu     sync.RWMutex
	byTerm map[string][]*entry
	byID   map[string]*entry
	all    []*entry
}

type entry struct {
	id        string
	owner     *Peer
	res       resource.Resource
	withdrawn atomic.Bool
	// announced: its advertise has completed, so finds are expected to
	// return it (before that a result is fine, a miss too).
	announced atomic.Bool
}

func (e *entry) live() bool { return e.owner.Alive() && !e.withdrawn.Load() }

func newCatalog() *catalog {
	return &catalog{byTerm: map[string][]*entry{}, byID: map[string]*entry{}}
}

func (c *catalog) add(owner *Peer, r resource.Resource) *entry {
	e := &entry{id: r.ID, owner: owner, res: r}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byID[r.ID] = e
	c.all = append(c.all, e)
	for _, t := range r.IndexTerms() {
		c.byTerm[t] = append(c.byTerm[t], e)
	}
	return e
}

// live counts the live resources under term and their distinct owners,
// leaving out those of not.
func (c *catalog) live(term string, not *Peer) (resources, providers int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	owners := map[*Peer]bool{}
	for _, e := range c.byTerm[term] {
		if e.live() && e.announced.Load() && e.owner != not {
			resources++
			owners[e.owner] = true
		}
	}
	return resources, len(owners)
}

// providerLive reports whether p owns a live resource under term.
func (c *catalog) providerLive(term string, p *Peer) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, e := range c.byTerm[term] {
		if e.owner == p && e.live() {
			return true
		}
	}
	return false
}

func (c *catalog) get(id string) *entry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.byID[id]
}

func (c *catalog) randomLive(r *rand.Rand) *entry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for range 100 {
		if e := c.all[r.IntN(len(c.all))]; e.live() && e.announced.Load() {
			return e
		}
	}
	return nil
}

// registerKeys files the DHT keys of terms (and of their announce topics)
// under their classes.
func (n *Net) registerKeys(terms []string) {
	for _, t := range terms {
		for _, k := range termKeys(t) {
			n.Keys.Register(k.Hash(), KeyTerm)
		}
		n.Keys.Register(topicKey(announce.Topic(t)), KeyTopic)
	}
}

// termKeys are the DHT keys pullnet may provide term under: the term's
// plain key (the baseline's only key) and its sub-keys.
func termKeys(term string) []cid.Cid {
	keys := make([]cid.Cid, termkeys.Subkeys)
	for i := range keys {
		keys[i] = termkeys.Key(term, i)
	}
	return keys
}

// topicKey is the DHT key pubsub's routing discovery uses for a topic.
func topicKey(topic string) []byte {
	h, err := mh.Sum([]byte("floodsub:"+topic), mh.SHA2_256, -1)
	if err != nil {
		panic(err)
	}
	return cid.NewCidV1(cid.Raw, h).Hash()
}

var ratingsKey = topicKey(reputation.Topic)
