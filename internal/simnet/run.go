package simnet

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pullnet/pullnet/node"
	"github.com/pullnet/pullnet/resource"
)

// Report is what one run measured. Times are in milliseconds; the *RTT
// fields divide them by the run's mean link RTT.
type Report struct {
	Kind      string  `json:"kind"`
	N         int     `json:"n"`
	Fill      string  `json:"fill"`
	Latency   string  `json:"latency"`
	RTTms     float64 `json:"rtt_ms"`
	DialRTTs  float64 `json:"dial_rtts"`
	Seed      int64   `json:"seed"`
	StartSecs float64 `json:"start_secs"`
	FillSecs  float64 `json:"fill_secs"`

	// Memory after the peers started and advertised, and the process's
	// peak resident set at the end.
	LivePerNodeKB  float64 `json:"live_heap_per_node_kb"`
	StackPerNodeKB float64 `json:"stack_per_node_kb"`
	HeapPerNodeKB  float64 `json:"heap_per_node_kb"`
	SysPerNodeKB   float64 `json:"sys_per_node_kb"`
	PeakRSSMB      float64 `json:"peak_rss_mb"`
	Goroutines     int     `json:"goroutines"`
	ConnsPerNode   float64 `json:"conns_per_node"`
	RTSizeMean     float64 `json:"rt_size_mean"`

	Advertise AdvertiseReport `json:"advertise"`
	Find      FindReport      `json:"find"`
	Rest      RestReport      `json:"rest"`
	Churn     []ChurnReport   `json:"churn,omitempty"`
	Hot       *HotReport      `json:"hot,omitempty"`
	Withdraw  *WithdrawReport `json:"withdraw,omitempty"`
	TotalSecs float64         `json:"total_secs"`
}

// AdvertiseReport covers the initial advertises and the probes.
type AdvertiseReport struct {
	Resources int     `json:"resources"`
	Failed    int     `json:"failed"`
	Secs      float64 `json:"secs"`
	// TermsPerResource is the index terms each resource is provided under.
	TermsPerResource float64 `json:"terms_per_resource"`
	// RPCs per advertise: DHT requests for the resource's term keys (the
	// provide walks and ADD_PROVIDER), and for its terms' gossip topics
	// (pubsub discovery, answered locally under LocalTopics).
	RPCs        float64 `json:"rpcs"`
	RPCsPerTerm float64 `json:"rpcs_per_term"`
	// BytesPerTerm is the DHT bytes sent (requests and answers) per
	// provided term.
	BytesPerTerm float64 `json:"bytes_per_term"`
	TopicRPCs    float64 `json:"topic_rpcs"`
	// Announced: advertise call to every term provided (ms).
	AnnouncedP50 float64 `json:"announced_p50_ms"`
	AnnouncedP99 float64 `json:"announced_p99_ms"`
	// Findable: advertise call to the first find by another peer that
	// returns it (ms), over the probes.
	Probes       int     `json:"probes"`
	ProbesFound  int     `json:"probes_found"`
	FindableP50  float64 `json:"findable_p50_ms"`
	FindableP99  float64 `json:"findable_p99_ms"`
	FindableRTT  float64 `json:"findable_p50_rtt"`
	ProbeFinds   float64 `json:"probe_finds_mean"`
	FindableFind float64 `json:"findable_over_find"`
}

// FindReport summarises finds.
type FindReport struct {
	Finds     int     `json:"finds"`
	Rate      float64 `json:"rate_per_sec"`
	Success   float64 `json:"success"`
	RareOK    float64 `json:"rare_success"`
	FirstP50  float64 `json:"first_p50_ms"`
	FirstP99  float64 `json:"first_p99_ms"`
	TenthN    int     `json:"tenth_n"`
	TenthP50  float64 `json:"tenth_p50_ms"`
	TenthP99  float64 `json:"tenth_p99_ms"`
	RareP50   float64 `json:"rare_first_p50_ms"`
	ProvP50   float64 `json:"first_provider_p50_ms"`
	RPCs      float64 `json:"rpcs_per_find"`
	Asks      float64 `json:"asks_per_find"`
	Stale     int     `json:"stale"`
	Results   int     `json:"results"`
	FirstRTT  float64 `json:"first_p50_rtt"`
	First99R  float64 `json:"first_p99_rtt"`
	TenthRTT  float64 `json:"tenth_p50_rtt"`
	Tenth99R  float64 `json:"tenth_p99_rtt"`
	ProvRTT   float64 `json:"first_provider_p50_rtt"`
	Unanswerd int     `json:"unanswerable"`
}

// RestReport is traffic per live peer per minute while nothing happens:
// measured over an idle window (what runs continuously: gossip heartbeats,
// topic discovery, trust pulls), plus the periodic upkeep the short run
// cannot wait for, from measured costs: a routing-table refresh every
// RefreshMins (kad-dht's default) and a reprovide of every term every
// ReprovideMins.
type RestReport struct {
	Secs            float64            `json:"secs"`
	RPCsPerMin      float64            `json:"rpcs_per_node_min"`
	TopicRPCsPerMin float64            `json:"topic_rpcs_per_node_min"`
	BytesPerMin     float64            `json:"bytes_per_node_min"`
	BytesByProto    map[string]float64 `json:"bytes_per_node_min_by_proto"`
	RefreshRPCs     float64            `json:"refresh_rpcs"`
	RefreshBytes    float64            `json:"refresh_bytes"`
	RefreshMins     float64            `json:"refresh_mins"`
	ReprovideMins   float64            `json:"reprovide_mins"`
	// Upkeep* add the refresh and reprovide to the idle window's traffic.
	UpkeepRPCsPerMin  float64 `json:"upkeep_rpcs_per_node_min"`
	UpkeepBytesPerMin float64 `json:"upkeep_bytes_per_node_min"`
}

// ChurnReport is one churn level.
type ChurnReport struct {
	Fraction    float64 `json:"fraction"`
	Replaced    int     `json:"replaced"`
	Finds       int     `json:"finds"`
	Success     float64 `json:"success"`
	Stale       int     `json:"stale"`
	Results     int     `json:"results"`
	StaleShare  float64 `json:"stale_share"`
	FirstP50    float64 `json:"first_p50_ms"`
	NewProbes   int     `json:"new_probes"`
	NewFound    int     `json:"new_found"`
	NewFindP50  float64 `json:"new_findable_p50_ms"`
	NewFindP99  float64 `json:"new_findable_p99_ms"`
	NewFindRTT  float64 `json:"new_findable_p50_rtt"`
	JoinFailed  int     `json:"join_failed"`
	AdvertFails int     `json:"advertise_failed"`
}

// HotReport is the hot-term experiment.
type HotReport struct {
	Providers int     `json:"providers"`
	Finds     int     `json:"finds"`
	Success   float64 `json:"success"`
	// Holders are the peers that received ADD_PROVIDER for the hot key;
	// Load is the GET_PROVIDERS each received for it during the finds,
	// busiest first (every peer that served any, holders or not).
	Holders      int     `json:"holders"`
	Served       int     `json:"served"`
	Load         []int64 `json:"load"`
	BusiestMean  float64 `json:"busiest_over_holder_mean"`
	BusiestShare float64 `json:"busiest_share_of_find_traffic"`
	// FindTraffic is every find-related request peers received during the
	// phase: GET_PROVIDERS for any key, plus /pullnet/find asks.
	FindTraffic int64   `json:"find_traffic"`
	HotP50      float64 `json:"hot_first_p50_ms"`
	RareP50     float64 `json:"rare_first_p50_ms"`
	HotOverRare float64 `json:"hot_over_rare"`
	// Picks: which provider gave each hot find its first result.
	DistinctPicks int     `json:"distinct_picks"`
	TopPickShare  float64 `json:"top_pick_share"`
	PickEntropy   float64 `json:"pick_entropy"` // normalised to [0,1] over the providers
	// AsksTop is the share of /pullnet/find asks the most-asked provider
	// served (pullnet).
	AsksTop float64 `json:"asks_top_share,omitempty"`
}

// WithdrawReport checks that withdrawn resources stay gone.
type WithdrawReport struct {
	Withdrawn int `json:"withdrawn"`
	Finds     int `json:"finds"`
	Returned  int `json:"returned"`
}

// findRec is one find.
type findRec struct {
	kind       string
	expect     int
	got, stale int
	first      time.Duration
	tenth      time.Duration
	firstProv  time.Duration
	rpcs, asks int64
	pick       peer.ID
	err        error
}

type driver struct {
	net  *Net
	sys  system
	w    Workload
	cat  *catalog
	rng  *rand.Rand // under rngMu
	rmu  sync.Mutex
	zipf *rand.Zipf
	sem  chan struct{}
	rtt  time.Duration
	logf func(format string, args ...any)
}

func (d *driver) intN(n int) int {
	d.rmu.Lock()
	defer d.rmu.Unlock()
	return d.rng.IntN(n)
}

func (d *driver) float() float64 {
	d.rmu.Lock()
	defer d.rmu.Unlock()
	return d.rng.Float64()
}

func (d *driver) randomAlive(not *Peer) *Peer {
	alive := d.net.Alive()
	for {
		p := alive[d.intN(len(alive))]
		if p != not || len(alive) == 1 {
			return p
		}
	}
}

// pickFind chooses a find: a rare term (a live resource's ID) or a tag by
// Zipf popularity that has a live resource.
func (d *driver) pickFind() (string, string) {
	if d.float() < d.w.RareShare {
		d.rmu.Lock()
		e := d.cat.randomLive(d.rng)
		d.rmu.Unlock()
		if e != nil {
			return resource.Term(resource.TermID, e.id), "rare"
		}
	}
	for range 50 {
		d.rmu.Lock()
		t := resource.Term(resource.TermTag, fmt.Sprintf("t%d", d.zipf.Uint64()))
		d.rmu.Unlock()
		if r, _ := d.cat.live(t, nil); r > 0 {
			return t, "tag"
		}
	}
	return resource.Term(resource.TermKind, kindNames[0]), "tag"
}

// runFind runs one find from p and checks its results against the catalog.
func (d *driver) runFind(ctx context.Context, p *Peer, term, kind string) findRec {
	res, prov := d.cat.live(term, p)
	rec := findRec{kind: kind, expect: res}
	if !d.sys.perResource() {
		rec.expect = prov
	}
	op := NewOp()
	ctx, cancel := context.WithTimeout(WithOp(ctx, op), d.w.FindTimeout)
	defer cancel()
	var mu sync.Mutex
	seen := map[string]bool{}
	rec.err = d.sys.find(ctx, p, term, d.w.FindLimit, func(id string, provider peer.ID) {
		el := time.Since(op.Start)
		if provider == p.ID {
			return // the finder's own resources come at once; only the network's count
		}
		mu.Lock()
		defer mu.Unlock()
		owner := d.net.PeerByID(provider)
		stale := owner == nil || !owner.Alive()
		if id != "" {
			e := d.cat.get(id)
			stale = stale || e == nil || !e.live() || seen[id]
			seen[id] = true
		} else if !stale {
			stale = !d.cat.providerLive(term, owner)
		}
		if stale {
			rec.stale++
			return
		}
		rec.got++
		if rec.got == 1 {
			rec.first, rec.pick = el, provider
		}
		if rec.got == 10 {
			rec.tenth = el
		}
	})
	rec.rpcs, rec.asks = op.RPCs.Load(), op.Asks.Load()
	rec.firstProv, _ = op.FirstProvider()
	return rec
}

// findStream runs finds at rate per second for dur, at most Parallel at a
// time, and returns them all.
func (d *driver) findStream(ctx context.Context, dur time.Duration, rate float64, pick func() (string, string)) ([]findRec, float64) {
	var (
		mu   sync.Mutex
		recs []findRec
		wg   sync.WaitGroup
	)
	start := time.Now()
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	end := time.After(dur)
	launched := 0
loop:
	for {
		select {
		case <-end:
			break loop
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		select {
		case d.sem <- struct{}{}:
		case <-end:
			break loop
		}
		term, kind := pick()
		p := d.randomAlive(nil)
		launched++
		wg.Add(1)
		go func() {
			defer func() { <-d.sem; wg.Done() }()
			r := d.runFind(ctx, p, term, kind)
			mu.Lock()
			recs = append(recs, r)
			mu.Unlock()
		}()
	}
	elapsed := time.Since(start)
	wg.Wait()
	return recs, float64(launched) / elapsed.Seconds()
}

// Run builds a net, drives the workload on it and reports.
func Run(ctx context.Context, opts Options, w Workload, logf func(string, ...any)) (*Report, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	t0 := time.Now()
	net, err := New(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer net.Close()
	opts = net.Options()
	rep := &Report{Kind: opts.Kind.String(), N: opts.N, Fill: opts.Fill.String(), Latency: opts.Latency.String(),
		RTTms: ms(opts.Latency.RTT()), DialRTTs: opts.DialRTTs, Seed: opts.Seed,
		StartSecs: net.StartTime.Seconds(), FillSecs: net.FillTime.Seconds()}
	logf("%s N=%d: started in %.1fs (fill %.1fs)", rep.Kind, opts.N, rep.StartSecs, rep.FillSecs)
	d := &driver{net: net, w: w, cat: newCatalog(), rng: rand.New(rand.NewPCG(uint64(opts.Seed), 2)),
		sem: make(chan struct{}, max(1, w.Parallel)), rtt: opts.Latency.RTT(), logf: logf}
	d.zipf = rand.NewZipf(d.rng, w.Zipf, 1, uint64(w.Vocab-1))
	d.sys = pullnetSys{}
	if opts.Kind == Baseline {
		d.sys = baselineSys{}
	}
	net.Keys.Register(ratingsKey, KeyTopic)
	var sizes float64
	for _, p := range net.Alive() {
		sizes += float64(p.DHT.RoutingTable().Size())
	}
	rep.RTSizeMean = sizes / float64(opts.N)

	// 1. Everyone advertises.
	if err := d.advertiseAll(ctx, rep); err != nil {
		return nil, err
	}
	if w.AfterSetup != nil {
		w.AfterSetup(net)
	}
	m := MeasureMemory()
	rep.HeapPerNodeKB = float64(m.HeapInuse) / 1024 / float64(opts.N)
	rep.LivePerNodeKB = float64(m.LiveHeap) / 1024 / float64(opts.N)
	rep.StackPerNodeKB = float64(m.Stacks) / 1024 / float64(opts.N)
	rep.SysPerNodeKB = float64(m.Sys) / 1024 / float64(opts.N)
	rep.Goroutines = m.Goroutines
	conns := 0
	for _, p := range net.Alive() {
		conns += len(p.Host.Network().Conns())
	}
	rep.ConnsPerNode = float64(conns) / float64(len(net.Alive()))
	logf("%s N=%d: advertised %d resources in %.1fs; live heap %.0f KB/node, stacks %.0f KB/node, %d goroutines, %.1f conns/node", rep.Kind, opts.N,
		rep.Advertise.Resources, rep.Advertise.Secs, rep.LivePerNodeKB, rep.StackPerNodeKB, m.Goroutines, rep.ConnsPerNode)

	// 2. Advertise-to-findable probes.
	d.probe(ctx, rep)
	logf("%s N=%d: findable p50 %.0f ms over %d/%d probes", rep.Kind, opts.N, rep.Advertise.FindableP50, rep.Advertise.ProbesFound, rep.Advertise.Probes)

	// 3. Finds.
	recs, rate := d.findStream(ctx, w.FindTime, w.FindRate, d.pickFind)
	rep.Find = d.summarise(recs, rate)
	if rep.Advertise.FindableP50 > 0 && rep.Find.FirstP50 > 0 {
		rep.Advertise.FindableFind = rep.Advertise.FindableP50 / rep.Find.FirstP50
	}
	logf("%s N=%d: %d finds, success %.3f, first p50 %.0f ms", rep.Kind, opts.N, rep.Find.Finds, rep.Find.Success, rep.Find.FirstP50)

	// 4. At rest. Gossip publishes wait up to 30 s for topic peers; the
	// window starts after the last of them.
	if w.RestTime > 0 {
		a := net.Totals()
		time.Sleep(w.RestTime)
		rep.Rest = restReport(net.Totals().Sub(a), len(net.Alive()), w.RestTime)
		d.upkeep(ctx, rep)
		logf("%s N=%d: at rest %.0f RPCs, %.0f B per node per minute", rep.Kind, opts.N, rep.Rest.RPCsPerMin, rep.Rest.BytesPerMin)
	}

	// 5. Withdrawals (pullnet).
	if w.Withdraw > 0 && opts.Kind == Pullnet {
		rep.Withdraw = d.withdraw(ctx)
	}

	// 6. Hot term.
	if w.Hot {
		rep.Hot = d.hot(ctx)
		logf("%s N=%d: hot busiest/mean %.1f, share %.3f, hot/rare %.2f", rep.Kind, opts.N, rep.Hot.BusiestMean, rep.Hot.BusiestShare, rep.Hot.HotOverRare)
	}

	// 7. Churn.
	for _, f := range w.Churn {
		cr := d.churn(ctx, f)
		rep.Churn = append(rep.Churn, cr)
		logf("%s N=%d: churn %.0f%%: success %.3f, stale %d/%d, new findable p50 %.0f ms (%d/%d)", rep.Kind, opts.N,
			100*f, cr.Success, cr.Stale, cr.Results, cr.NewFindP50, cr.NewFound, cr.NewProbes)
	}
	rep.PeakRSSMB = peakRSSMB()
	rep.TotalSecs = time.Since(t0).Seconds()
	return rep, nil
}

func (d *driver) advertiseAll(ctx context.Context, rep *Report) error {
	net, w := d.net, d.w
	peers := net.Alive()
	var all []resource.Resource
	owners := []*Peer{}
	var terms []string
	for i, p := range peers {
		if w.Advertisers > 0 && w.Advertisers < 1 && float64(i%100) >= 100*w.Advertisers {
			continue
		}
		for j := range w.Resources {
			r := w.resourceFor(net.opts.Seed, p.Slot, j)
			r.ID = resource.NewID(p.ID.String(), r.Handle)
			all = append(all, r)
			owners = append(owners, p)
			terms = append(terms, r.IndexTerms()...)
		}
	}
	net.registerKeys(terms)
	before := net.Totals()
	start := time.Now()
	var (
		mu       sync.Mutex
		announce []time.Duration
		failed   int
	)
	_ = d.parallelOps(ctx, len(all), func(i int) {
		actx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		d.cat.add(owners[i], all[i])
		t := time.Now()
		id, err := d.sys.advertise(actx, owners[i], all[i])
		el := time.Since(t)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failed++
			d.logf("advertise %d: %v", i, err)
			return
		}
		if id != all[i].ID {
			d.logf("advertise %d: ID %s, expected %s", i, id, all[i].ID)
		}
		announce = append(announce, el)
		d.cat.get(all[i].ID).announced.Store(true)
	})
	diff := net.Totals().Sub(before)
	a := &rep.Advertise
	a.Resources, a.Failed, a.Secs = len(all), failed, time.Since(start).Seconds()
	a.TermsPerResource = float64(len(terms)) / float64(len(all))
	a.RPCs = float64(diff.RPCsOut(KeyTerm)) / float64(len(all))
	a.BytesPerTerm = float64(diff.BytesOut[ProtoDHT]) / float64(len(terms))
	a.RPCsPerTerm = a.RPCs / a.TermsPerResource
	a.TopicRPCs = float64(diff.RPCsOut(KeyTopic)) / float64(len(all))
	a.AnnouncedP50, a.AnnouncedP99 = pct(announce, 50), pct(announce, 99)
	return nil
}

// parallelOps runs f(0) … f(count-1) under the operation cap.
func (d *driver) parallelOps(ctx context.Context, count int, f func(i int)) error {
	var wg sync.WaitGroup
	for i := range count {
		select {
		case d.sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer func() { <-d.sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
	return nil
}

// findable advertises r from p while another peer starts a find for term
// every quarter RTT (at most 16 at a time); it returns the time from the
// advertise call until a find first returned r, and how many finds it
// took.
func (d *driver) findable(ctx context.Context, p *Peer, r resource.Resource, term string) (time.Duration, int, bool) {
	q := d.randomAlive(p)
	d.cat.add(p, r)
	start := time.Now()
	done := make(chan error, 1)
	e := d.cat.get(r.ID)
	go func() {
		actx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		_, err := d.sys.advertise(actx, p, r)
		if err == nil {
			e.announced.Store(true)
		}
		done <- err
	}()
	var (
		mu    sync.Mutex
		best  = time.Duration(-1)
		finds int
		wg    sync.WaitGroup
		sem   = make(chan struct{}, 16)
	)
	interval := max(d.rtt/4, 20*time.Millisecond)
	for time.Since(start) < time.Minute && ctx.Err() == nil {
		mu.Lock()
		found := best >= 0
		mu.Unlock()
		if found {
			break
		}
		select {
		case sem <- struct{}{}:
			if !q.Alive() {
				q = d.randomAlive(p)
			}
			finds++
			wg.Add(1)
			go func(q *Peer) {
				defer func() { <-sem; wg.Done() }()
				fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				_ = d.sys.find(fctx, q, term, 1, func(_ string, prov peer.ID) {
					if prov != p.ID {
						return
					}
					el := time.Since(start)
					mu.Lock()
					if best < 0 || el < best {
						best = el
					}
					mu.Unlock()
					cancel()
				})
			}(q)
		default:
		}
		_ = sleepCtx(ctx, interval)
	}
	wg.Wait()
	err := <-done
	if best < 0 {
		d.logf("%s: %s of peer %d (alive %v) not found by %d finds from peer %d (alive %v); advertise: %v",
			d.net.opts.Kind, term, p.Slot, p.Alive(), finds, q.Slot, q.Alive(), err)
	}
	return best, finds, best >= 0
}

func (d *driver) probe(ctx context.Context, rep *Report) {
	a := &rep.Advertise
	var (
		mu    sync.Mutex
		times []time.Duration
		finds int
	)
	var terms []string
	type job struct {
		p *Peer
		r resource.Resource
	}
	jobs := make([]job, d.w.Probes)
	for k := range jobs {
		p := d.randomAlive(nil)
		r := resource.Resource{Kind: kindNames[k%len(kindNames)], Name: "x", Tags: []string{fmt.Sprintf("probe%d", k)}, Handle: fmt.Sprintf("probe%d", k)}
		r.ID = resource.NewID(p.ID.String(), r.Handle)
		jobs[k] = job{p, r}
		terms = append(terms, r.IndexTerms()...)
	}
	d.net.registerKeys(terms)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			el, n, ok := d.findable(ctx, j.p, j.r, resource.Term(resource.TermTag, j.r.Tags[0]))
			mu.Lock()
			defer mu.Unlock()
			finds += n
			if ok {
				times = append(times, el)
			}
		}()
	}
	wg.Wait()
	a.Probes, a.ProbesFound = len(jobs), len(times)
	a.FindableP50, a.FindableP99 = pct(times, 50), pct(times, 99)
	a.FindableRTT = a.FindableP50 / ms(d.rtt)
	if len(jobs) > 0 {
		a.ProbeFinds = float64(finds) / float64(len(jobs))
	}
}

func (d *driver) summarise(recs []findRec, rate float64) FindReport {
	f := FindReport{Finds: len(recs), Rate: rate}
	var first, tenth, rare, prov []time.Duration
	var ok, answerable, rareOK, rareN int
	var rpcs, asks int64
	for _, r := range recs {
		rpcs += r.rpcs
		asks += r.asks
		f.Stale += r.stale
		f.Results += r.got + r.stale
		if r.expect == 0 {
			f.Unanswerd++
			continue
		}
		answerable++
		if r.kind == "rare" {
			rareN++
		}
		if r.firstProv > 0 {
			prov = append(prov, r.firstProv)
		}
		if r.got == 0 {
			continue
		}
		ok++
		first = append(first, r.first)
		if r.kind == "rare" {
			rareOK++
			rare = append(rare, r.first)
		}
		if r.expect >= 10 && r.got >= 10 {
			tenth = append(tenth, r.tenth)
		}
	}
	if answerable > 0 {
		f.Success = float64(ok) / float64(answerable)
	}
	if rareN > 0 {
		f.RareOK = float64(rareOK) / float64(rareN)
	}
	if len(recs) > 0 {
		f.RPCs = float64(rpcs) / float64(len(recs))
		f.Asks = float64(asks) / float64(len(recs))
	}
	f.FirstP50, f.FirstP99 = pct(first, 50), pct(first, 99)
	f.TenthN, f.TenthP50, f.TenthP99 = len(tenth), pct(tenth, 50), pct(tenth, 99)
	f.RareP50, f.ProvP50 = pct(rare, 50), pct(prov, 50)
	r := ms(d.rtt)
	f.FirstRTT, f.First99R, f.TenthRTT, f.Tenth99R, f.ProvRTT = f.FirstP50/r, f.FirstP99/r, f.TenthP50/r, f.TenthP99/r, f.ProvP50/r
	return f
}

func restReport(diff Snapshot, alive int, w time.Duration) RestReport {
	per := float64(alive) * w.Minutes()
	r := RestReport{Secs: w.Seconds(), RPCsPerMin: float64(diff.AllRPCsOut()) / per,
		TopicRPCsPerMin: float64(diff.RPCsOut(KeyTopic)) / per,
		BytesPerMin:     float64(diff.AllBytesOut()) / per, BytesByProto: map[string]float64{}}
	for p := range NumProtos {
		r.BytesByProto[Proto(p).String()] = float64(diff.BytesOut[p]) / per
	}
	return r
}

// upkeep measures a full routing-table refresh on a sample of peers and
// adds it, and the reprovide of every term, to the traffic at rest.
func (d *driver) upkeep(ctx context.Context, rep *Report) {
	r := &rep.Rest
	r.RefreshMins = 10 // kad-dht's RoutingTableRefreshPeriod
	r.ReprovideMins = node.DefaultReprovideInterval.Minutes()
	if d.net.opts.Kind == Baseline {
		r.ReprovideMins = 22 * 60 // kubo's Reprovider.Interval
	}
	alive := d.net.Alive()
	sample := alive[:min(len(alive), 20)]
	before := d.net.Totals()
	_ = d.parallelOps(ctx, len(sample), func(i int) {
		select {
		case <-sample[i].DHT.ForceRefresh():
		case <-ctx.Done():
		}
	})
	diff := d.net.Totals().Sub(before)
	r.RefreshRPCs = float64(diff.AllRPCsOut()) / float64(len(sample))
	r.RefreshBytes = float64(diff.BytesOut[ProtoDHT]) / float64(len(sample))
	a := rep.Advertise
	termsPerNode := a.TermsPerResource * float64(d.w.Resources)
	r.UpkeepRPCsPerMin = r.RPCsPerMin + r.RefreshRPCs/r.RefreshMins + termsPerNode*a.RPCsPerTerm/r.ReprovideMins
	r.UpkeepBytesPerMin = r.BytesPerMin + r.RefreshBytes/r.RefreshMins + termsPerNode*a.BytesPerTerm/r.ReprovideMins
}

func (d *driver) withdraw(ctx context.Context) *WithdrawReport {
	wr := &WithdrawReport{}
	d.cat.mu.RLock()
	all := slices.Clone(d.cat.all)
	d.cat.mu.RUnlock()
	var gone []*entry
	for _, e := range all {
		if e.live() && d.float() < d.w.Withdraw {
			if err := d.sys.withdraw(ctx, e.owner, e.id); err == nil {
				e.withdrawn.Store(true)
				gone = append(gone, e)
			}
		}
	}
	wr.Withdrawn = len(gone)
	for _, e := range gone {
		for _, term := range []string{resource.Term(resource.TermID, e.id), resource.Term(resource.TermTag, e.res.Tags[0])} {
			rec := d.runFind(ctx, d.randomAlive(nil), term, "withdrawn")
			wr.Finds++
			wr.Returned += rec.stale
		}
	}
	return wr
}

func (d *driver) hot(ctx context.Context) *HotReport {
	net := d.net
	alive := net.Alive()
	h := &HotReport{Providers: min(d.w.HotProviders, len(alive))}
	term := resource.Term(resource.TermTag, HotTag)
	var terms []string
	perm := rand.New(rand.NewPCG(uint64(net.opts.Seed), 3)).Perm(len(alive))[:h.Providers]
	type job struct {
		p *Peer
		r resource.Resource
	}
	jobs := make([]job, len(perm))
	for k, i := range perm {
		p := alive[i]
		r := resource.Resource{Kind: kindNames[k%min(d.w.Kinds, len(kindNames))], Name: "x", Tags: []string{HotTag}, Handle: "hot"}
		r.ID = resource.NewID(p.ID.String(), r.Handle)
		jobs[k] = job{p, r}
		terms = append(terms, r.IndexTerms()...)
	}
	net.registerKeys(terms)
	var hotKeys [][]byte
	for _, k := range termKeys(term) {
		hotKeys = append(hotKeys, k.Hash())
	}
	load := net.Keys.Track(hotKeys...)
	_ = d.parallelOps(ctx, len(jobs), func(k int) {
		actx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		e := d.cat.add(jobs[k].p, jobs[k].r)
		if _, err := d.sys.advertise(actx, jobs[k].p, jobs[k].r); err == nil {
			e.announced.Store(true)
		}
	})
	before := make([]int64, len(load.GetProviders))
	for i := range before {
		before[i] = load.GetProviders[i].Load()
	}
	tot0 := net.Totals()
	served0 := findsServed(net)
	pick := func() (string, string) {
		if d.float() < 0.2 {
			d.rmu.Lock()
			e := d.cat.randomLive(d.rng)
			d.rmu.Unlock()
			if e != nil {
				return resource.Term(resource.TermID, e.id), "rare"
			}
		}
		return term, "hot"
	}
	recs, _ := d.findStream(ctx, d.w.HotTime, d.w.HotRate*1.25, pick)
	tot := net.Totals().Sub(tot0)
	served := findsServed(net)
	var asksAll, asksTop int64
	for slot, s := range served {
		a := s - served0[slot]
		asksAll += a
		asksTop = max(asksTop, a)
	}
	h.FindTraffic = tot.RPCIn[pb.Message_GET_PROVIDERS] + asksAll
	if asksAll > 0 {
		h.AsksTop = float64(asksTop) / float64(asksAll)
	}
	var holderSum float64
	var busiest int64
	for slot := range load.GetProviders {
		l := load.GetProviders[slot].Load() - before[slot]
		if l > 0 {
			h.Load = append(h.Load, l)
			busiest = max(busiest, l)
		}
		if load.AddProvider[slot].Load() > 0 {
			h.Holders++
			holderSum += float64(l)
		}
	}
	slices.SortFunc(h.Load, func(a, b int64) int { return cmp.Compare(b, a) })
	h.Served = len(h.Load)
	if h.Holders > 0 && holderSum > 0 {
		h.BusiestMean = float64(busiest) / (holderSum / float64(h.Holders))
	}
	if h.FindTraffic > 0 {
		h.BusiestShare = float64(busiest) / float64(h.FindTraffic)
	}
	var hotT, rareT []time.Duration
	picks := map[peer.ID]int{}
	var hotN, hotOK int
	for _, r := range recs {
		if r.kind == "hot" {
			hotN++
			if r.got > 0 {
				hotOK++
				hotT = append(hotT, r.first)
				picks[r.pick]++
			}
		} else if r.got > 0 {
			rareT = append(rareT, r.first)
		}
	}
	h.Finds = hotN
	if hotN > 0 {
		h.Success = float64(hotOK) / float64(hotN)
	}
	h.HotP50, h.RareP50 = pct(hotT, 50), pct(rareT, 50)
	if h.RareP50 > 0 {
		h.HotOverRare = h.HotP50 / h.RareP50
	}
	h.DistinctPicks = len(picks)
	var top int
	var ent float64
	for _, c := range picks {
		top = max(top, c)
		q := float64(c) / float64(hotOK)
		ent -= q * math.Log(q)
	}
	if hotOK > 0 {
		h.TopPickShare = float64(top) / float64(hotOK)
	}
	if h.Providers > 1 && hotOK > 1 {
		h.PickEntropy = ent / math.Log(float64(min(h.Providers, hotOK)))
	}
	return h
}

func findsServed(net *Net) map[int]int64 {
	out := map[int]int64{}
	for _, p := range net.Peers() {
		if p.Node != nil && p.Alive() {
			out[p.Slot] = p.Node.Stats().FindsServed
		}
	}
	return out
}

func (d *driver) churn(ctx context.Context, f float64) ChurnReport {
	cr := ChurnReport{Fraction: f}
	var all []findRec
	var newTimes []time.Duration
	var mu sync.Mutex
	for period := range d.w.ChurnPeriods {
		alive := d.net.Alive()
		k := int(math.Round(f * float64(len(alive))))
		r := rand.New(rand.NewPCG(uint64(d.net.opts.Seed)+uint64(period), uint64(f*1000)))
		for _, i := range r.Perm(len(alive))[:k] {
			d.net.Stop(alive[i])
		}
		cr.Replaced += k
		// Newcomers join and advertise while finds go on; some of them are
		// probed for how soon they are findable.
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			probeEvery := max(1, k/10)
			_ = d.parallelOps(ctx, k, func(i int) {
				jr := rand.New(rand.NewPCG(uint64(d.net.opts.Seed), uint64(period*100000+i)))
				p, err := d.net.Join(ctx, jr)
				if err != nil {
					mu.Lock()
					cr.JoinFailed++
					mu.Unlock()
					return
				}
				var terms []string
				var rs []resource.Resource
				for j := range d.w.Resources {
					res := d.w.resourceFor(d.net.opts.Seed, p.Slot, j)
					res.ID = resource.NewID(p.ID.String(), res.Handle)
					rs = append(rs, res)
					terms = append(terms, res.IndexTerms()...)
				}
				d.net.registerKeys(terms)
				for j, res := range rs {
					if j == 0 && i%probeEvery == 0 {
						el, _, ok := d.findable(ctx, p, res, resource.Term(resource.TermID, res.ID))
						mu.Lock()
						cr.NewProbes++
						if ok {
							cr.NewFound++
							newTimes = append(newTimes, el)
						}
						mu.Unlock()
						continue
					}
					d.cat.add(p, res)
					actx, cancel := context.WithTimeout(ctx, 2*time.Minute)
					_, err := d.sys.advertise(actx, p, res)
					cancel()
					if err != nil {
						mu.Lock()
						cr.AdvertFails++
						mu.Unlock()
						continue
					}
					d.cat.get(res.ID).announced.Store(true)
				}
			})
		}()
		recs, _ := d.findStream(ctx, d.w.ChurnPeriod, d.w.FindRate, d.pickFind)
		wg.Wait()
		all = append(all, recs...)
	}
	fr := d.summarise(all, 0)
	cr.Finds, cr.Success, cr.Stale, cr.Results, cr.FirstP50 = fr.Finds, fr.Success, fr.Stale, fr.Results, fr.FirstP50
	if cr.Results > 0 {
		cr.StaleShare = float64(cr.Stale) / float64(cr.Results)
	}
	cr.NewFindP50, cr.NewFindP99 = pct(newTimes, 50), pct(newTimes, 99)
	cr.NewFindRTT = cr.NewFindP50 / ms(d.rtt)
	return cr
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// pct is the p-th percentile of ds in milliseconds, 0 when empty.
func pct(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return ms(s[max(0, min(i, len(s)-1))])
}

// peakRSSMB is the process's peak resident set size (VmHWM), 0 if unknown.
func peakRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}
