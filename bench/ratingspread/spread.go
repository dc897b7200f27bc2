package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pullnet/pullnet/internal/ratings"
	"github.com/pullnet/pullnet/protocol/announce"
	"github.com/pullnet/pullnet/protocol/reputation"
	"github.com/pullnet/pullnet/protocol/signed"
)

// Config shapes one run.
type Config struct {
	Nodes   int           // mocknet hosts, each a full gossip stack
	Degree  int           // connections per node (random regular graph)
	Ratings int           // measured ratings, published one after another
	Warmup  int           // ratings published first and not counted
	Latency time.Duration // one-way delay of every mocknet link
	// Settle is waited once every node has seen all its neighbours join
	// the topic, before the warm-up ratings, so that gossipsub's heartbeat
	// (1 s) grafts and balances the meshes. Zero: none.
	Settle time.Duration
	// Tail is waited after a rating has reached every node before the
	// next one is published, so that its window also holds the IHAVE
	// gossip about it (gossipsub gossips a message for 3 heartbeats).
	// Zero: the window ends when the last node has the rating.
	Tail    time.Duration
	Timeout time.Duration // per rating, and for the network to come up
	Comment int           // bytes of comment in each rating
	Seed    uint64
	Logger  *slog.Logger // nil discards
	// Progress, if set, hears what the run is doing.
	Progress io.Writer
}

// Defaults are the command's defaults.
func Defaults() Config {
	return Config{Nodes: 300, Degree: 8, Ratings: 20, Warmup: 3, Latency: 20 * time.Millisecond,
		Settle: 5 * time.Second, Tail: 3500 * time.Millisecond, Timeout: 60 * time.Second, Seed: 1}
}

// quantiles of the other nodes a rating's times are reported at.
var quantiles = []float64{0.5, 0.9, 0.99, 1}

// Row is what one measured rating did.
type Row struct {
	Publisher int
	Reached   int             // other nodes holding it at the window's end
	Times     []time.Duration // to quantiles of the other nodes; -1: not reached
	Window    time.Duration   // publish → next publish (or end)
	// Over the window, summed over all nodes: bytes read from pubsub
	// streams, and of those full message copies and control.
	Bytes, MsgBytes, CtlBytes int64
	// Attributed to this rating by message ID, summed over all nodes,
	// whenever received: full copies, copies already held (or published),
	// IHAVE/IWANT/IDONTWANT entries naming it.
	Copies, Dups, IHave, IWant, IDontWant int64
	// reputation.Service.Stats.Duplicate over the window, all nodes.
	ValidatorDups int64
	// Hops in the graph from the publisher to the nearest node beyond
	// each quantile of the others: Hops[q] × Latency is what the spread
	// would take if every hop cost only the link's latency.
	Hops []int
}

// Report is a run's outcome.
type Report struct {
	Config                Config
	DegMin, DegMax        int
	DegMean               float64
	RTT                   time.Duration // median libp2p ping over one link
	Ready                 time.Duration // connect → every node sees all neighbours on the topic
	EnvelopeSize, MsgSize int           // signed rating; pubsub message carrying it
	IdleWindow            time.Duration
	IdleBytes             int64 // all nodes, in IdleWindow, no rating in flight
	Rows                  []Row
	BytesIn, BytesOut     int64
	BadFrames             int64
	Grafts, Prunes        int64
	Accepted, Rejected    int64 // reputation stats, all nodes, whole run
	Elapsed               time.Duration
}

type member struct {
	h    host.Host
	key  crypto.PrivKey
	rep  *reputation.Service
	book *ratings.Book
}

func (c Config) progress(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, format+"\n", args...)
	}
}

// Run builds the network, publishes the ratings and measures them.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	begin := time.Now()
	if cfg.Nodes < 3 || cfg.Degree < 1 || cfg.Degree >= cfg.Nodes || cfg.Ratings < 1 {
		return nil, fmt.Errorf("need -nodes >= 3, 1 <= -degree < nodes, -ratings >= 1")
	}
	if cfg.Nodes*cfg.Degree%2 != 0 {
		return nil, fmt.Errorf("nodes × degree must be even for a regular graph")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Minute
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	var seed [32]byte
	for i := range 4 {
		v := rng.Uint64()
		for j := range 8 {
			seed[i*8+j] = byte(v >> (8 * j))
		}
	}
	keyRand := rand.NewChaCha8(seed) // reproducible peer IDs

	rep := &Report{Config: cfg}
	mn := mocknet.New()
	defer mn.Close()
	mn.SetLinkDefaults(mocknet.LinkOptions{Latency: cfg.Latency})
	obs := newObserver(cfg.Nodes)
	ms := make([]*member, cfg.Nodes)
	defer func() {
		for _, m := range ms {
			if m != nil && m.rep != nil {
				m.rep.Close()
			}
		}
	}()
	for i := range cfg.Nodes {
		key, _, err := crypto.GenerateEd25519Key(keyRand)
		if err != nil {
			return nil, err
		}
		h, err := mn.AddPeer(key, addr(i))
		if err != nil {
			return nil, fmt.Errorf("mocknet peer %d: %w", i, err)
		}
		m := &member{h: h, key: h.Peerstore().PrivKey(h.ID())}
		ms[i] = m
		// pullnet's gossipsub (options, peer scoring, flood publish), on a
		// host whose pubsub streams the observer sees.
		ann, err := announce.New(ctx, &observedHost{Host: h, obs: obs, node: obs.nodes[i]}, nil, cfg.Logger)
		if err != nil {
			return nil, err
		}
		if m.book, err = ratings.Open(ctx, ratings.Config{Store: dssync.MutexWrap(ds.NewMapDatastore())}); err != nil {
			return nil, err
		}
		if m.rep, err = reputation.New(h, ann.PubSub(), &trackedBook{Book: m.book, node: i, obs: obs}, nil, cfg.Logger); err != nil {
			return nil, err
		}
	}

	edges, err := regularGraph(rng, cfg.Nodes, cfg.Degree)
	if err != nil {
		return nil, err
	}
	deg := make([]int, cfg.Nodes)
	for _, e := range edges {
		deg[e[0]]++
		deg[e[1]]++
	}
	rep.DegMin, rep.DegMax = slices.Min(deg), slices.Max(deg)
	rep.DegMean = float64(2*len(edges)) / float64(cfg.Nodes)
	if !connected(cfg.Nodes, edges) {
		return nil, errors.New("graph is not connected") // regularGraph retries until it is
	}
	cfg.progress("graph: %d nodes, %d links, degree %d–%d, connected", cfg.Nodes, len(edges), rep.DegMin, rep.DegMax)
	connStart := time.Now()
	for _, e := range edges {
		a, b := ms[e[0]].h.ID(), ms[e[1]].h.ID()
		if _, err := mn.LinkPeers(a, b); err != nil {
			return nil, err
		}
		if _, err := mn.ConnectPeers(a, b); err != nil {
			return nil, fmt.Errorf("connect %d–%d: %w", e[0], e[1], err)
		}
	}
	// Every node has heard every neighbour subscribe to the topic.
	if err := poll(ctx, cfg.Timeout, "every node sees all its neighbours on the ratings topic", func() bool {
		for i, m := range ms {
			if m.rep.Peers() < deg[i] {
				return false
			}
		}
		return true
	}); err != nil {
		return nil, err
	}
	rep.Ready = time.Since(connStart)
	cfg.progress("topic peers met after %v", rep.Ready.Round(time.Millisecond))

	if rep.RTT, err = rtt(ctx, ms[edges[0][0]].h, ms[edges[0][1]].h); err != nil {
		return nil, fmt.Errorf("ping: %w", err)
	}
	if err := wait(ctx, cfg.Settle); err != nil {
		return nil, err
	}

	idx := 0
	publish := func(warm bool) (*entry, error) {
		pub := rng.IntN(cfg.Nodes)
		prov := rng.IntN(cfg.Nodes - 1)
		if prov >= pub {
			prov++
		}
		now := time.Now()
		receipt, err := signed.SealReceipt(ms[prov].key, signed.Receipt{
			Session: fmt.Sprintf("ratingspread-%d-%d", cfg.Seed, idx), ResourceID: "bench",
			Provider: ms[prov].h.ID(), Consumer: ms[pub].h.ID(), Issued: now.Add(-time.Minute),
		})
		if err != nil {
			return nil, err
		}
		score := float64(rng.IntN(201)-100) / 100
		rec, err := signed.SealRating(ms[pub].key, receipt, score, comment(cfg.Comment), now)
		if err != nil {
			return nil, err
		}
		rep.EnvelopeSize = len(rec.Envelope)
		e := obs.register(rec, idx, pub, warm)
		idx++
		if err := ms[pub].rep.Publish(ctx, rec); err != nil {
			return nil, err
		}
		return e, nil
	}
	// spread publishes one rating and waits until every other node has it
	// (or Timeout), then Tail.
	spread := func(warm bool) (*entry, error) {
		e, err := publish(warm)
		if err != nil {
			return nil, err
		}
		t := time.NewTimer(cfg.Timeout)
		defer t.Stop()
		select {
		case <-e.done:
		case <-t.C:
			cfg.progress("rating %d reached %d of %d other nodes within %v", e.idx, len(e.reached()), e.others, cfg.Timeout)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return e, wait(ctx, cfg.Tail)
	}

	for range cfg.Warmup {
		if _, err := spread(true); err != nil {
			return nil, err
		}
	}
	cfg.progress("%d warm-up ratings spread", cfg.Warmup)
	if cfg.Tail > 0 {
		b0, t0 := obs.bytesIn.Load(), time.Now()
		if err := wait(ctx, cfg.Tail); err != nil {
			return nil, err
		}
		rep.IdleBytes, rep.IdleWindow = obs.bytesIn.Load()-b0, time.Since(t0)
	}

	valDups := func() (n int64) {
		for _, m := range ms {
			n += m.rep.Stats.Duplicate.Load()
		}
		return n
	}
	for r := range cfg.Ratings {
		b0, mb0, cb0, vd0, t0 := obs.bytesIn.Load(), obs.msgBytes.Load(), obs.ctlBytes.Load(), valDups(), time.Now()
		e, err := spread(false)
		if err != nil {
			return nil, err
		}
		row := Row{
			Publisher: e.publisher,
			Window:    time.Since(t0),
			Bytes:     obs.bytesIn.Load() - b0, MsgBytes: obs.msgBytes.Load() - mb0, CtlBytes: obs.ctlBytes.Load() - cb0,
			ValidatorDups: valDups() - vd0,
		}
		arr := e.reached()
		row.Reached = len(arr)
		dist := distances(cfg.Nodes, edges, e.publisher)
		for _, q := range quantiles {
			k := max(int(math.Ceil(q*float64(e.others))), 1)
			if k <= len(arr) {
				row.Times = append(row.Times, arr[k-1])
			} else {
				row.Times = append(row.Times, -1)
			}
			row.Hops = append(row.Hops, dist[k-1])
		}
		rep.Rows = append(rep.Rows, row)
		cfg.progress("rating %d/%d: 99 %% in %v, 100 %% in %v", r+1, cfg.Ratings, row.Times[2], row.Times[3])
	}
	// Attributed counts go on arriving after a window ends (IHAVE gossip),
	// so they are read once all windows are over.
	obs.mu.RLock()
	var measured []*entry
	for _, e := range obs.byKey {
		if !e.warm {
			measured = append(measured, e)
		}
	}
	obs.mu.RUnlock()
	slices.SortFunc(measured, func(a, b *entry) int { return a.idx - b.idx })
	for i, e := range measured {
		r := &rep.Rows[i]
		r.Copies, r.Dups, r.IHave, r.IWant, r.IDontWant = e.copies.Load(), e.dups.Load(), e.ihave.Load(), e.iwant.Load(), e.idontwant.Load()
	}
	rep.MsgSize = int(obs.msgSize.Load())
	rep.BytesIn, rep.BytesOut, rep.BadFrames = obs.bytesIn.Load(), obs.bytesOut.Load(), obs.badFrame.Load()
	rep.Grafts, rep.Prunes = obs.graft.Load(), obs.prune.Load()
	for _, m := range ms {
		s := &m.rep.Stats
		rep.Accepted += s.Accepted.Load()
		rep.Rejected += s.Forged.Load() + s.NotParty.Load() + s.BadTime.Load() + s.Malformed.Load() + s.Throttled.Load() + s.Full.Load()
	}
	rep.Elapsed = time.Since(begin)
	return rep, nil
}

// addr gives node i an address in its own /16, as internal/testswarm.Addr
// does, so that nothing sees the whole network in one block.
func addr(i int) ma.Multiaddr {
	return ma.StringCast(fmt.Sprintf("/ip4/%d.%d.1.1/tcp/4001", 11+i/250, i%250))
}

func comment(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return string(b)
}

// regularGraph draws a random d-regular simple graph on n nodes that is
// connected (Steger–Wormald pairing: random stubs are paired while a
// suitable pair exists; a dead end or a disconnected graph starts over).
func regularGraph(rng *rand.Rand, n, d int) ([][2]int, error) {
	for range 100 {
		stubs := make([]int, 0, n*d)
		for v := range n {
			for range d {
				stubs = append(stubs, v)
			}
		}
		adj := make([]map[int]bool, n)
		for v := range adj {
			adj[v] = map[int]bool{}
		}
		var edges [][2]int
		ok := true
		for len(stubs) > 0 {
			paired := false
			for range 100 {
				i, j := rng.IntN(len(stubs)), rng.IntN(len(stubs))
				u, v := stubs[i], stubs[j]
				if i == j || u == v || adj[u][v] {
					continue
				}
				adj[u][v], adj[v][u] = true, true
				edges = append(edges, [2]int{u, v})
				// Remove the higher index first so the lower stays valid.
				hi, lo := max(i, j), min(i, j)
				stubs[hi] = stubs[len(stubs)-1]
				stubs = stubs[:len(stubs)-1]
				stubs[lo] = stubs[len(stubs)-1]
				stubs = stubs[:len(stubs)-1]
				paired = true
				break
			}
			if !paired && !anySuitable(stubs, adj) {
				ok = false
				break
			}
		}
		if ok && connected(n, edges) {
			return edges, nil
		}
	}
	return nil, fmt.Errorf("no connected %d-regular graph on %d nodes after 100 tries", d, n)
}

func anySuitable(stubs []int, adj []map[int]bool) bool {
	for i, u := range stubs {
		for _, v := range stubs[i+1:] {
			if u != v && !adj[u][v] {
				return true
			}
		}
	}
	return false
}

// distances are the hop counts from src to every other node, sorted.
func distances(n int, edges [][2]int, src int) []int {
	adj := make([][]int, n)
	for _, e := range edges {
		adj[e[0]] = append(adj[e[0]], e[1])
		adj[e[1]] = append(adj[e[1]], e[0])
	}
	dist := make([]int, n)
	for i := range dist {
		dist[i] = -1
	}
	dist[src] = 0
	queue := []int{src}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, w := range adj[v] {
			if dist[w] < 0 {
				dist[w] = dist[v] + 1
				queue = append(queue, w)
			}
		}
	}
	out := slices.Concat(dist[:src], dist[src+1:])
	slices.Sort(out)
	return out
}

func connected(n int, edges [][2]int) bool {
	adj := make([][]int, n)
	for _, e := range edges {
		adj[e[0]] = append(adj[e[0]], e[1])
		adj[e[1]] = append(adj[e[1]], e[0])
	}
	seen := make([]bool, n)
	seen[0] = true
	queue, count := []int{0}, 1
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, w := range adj[v] {
			if !seen[w] {
				seen[w] = true
				count++
				queue = append(queue, w)
			}
		}
	}
	return count == n
}

// rtt is the median of 9 libp2p pings from a to b over their mocknet link.
func rtt(ctx context.Context, a, b host.Host) (time.Duration, error) {
	ping.NewPingService(b)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var ds []time.Duration
	for res := range ping.Ping(ctx, a, b.ID()) {
		if res.Error != nil {
			return 0, res.Error
		}
		ds = append(ds, res.RTT)
		if len(ds) == 9 {
			break
		}
	}
	if len(ds) == 0 {
		return 0, errors.New("no ping answered")
	}
	slices.Sort(ds)
	return ds[len(ds)/2], nil
}

// poll checks cond every 10 ms until it holds, ctx ends, or timeout passes.
func poll(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("timed out after %v waiting until %s", timeout, what)
		case <-tick.C:
		}
	}
	return nil
}

// wait lets d pass (the bench's documented settle and tail waits); zero
// returns at once.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
