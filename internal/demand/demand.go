// Package demand keeps a node's bounded, local counts of the demand it sees:
// the finds its participant ran (by query term, and the queries that found
// nothing anywhere), the finds it served other peers as a provider (by
// term, with how many results it had), and for each of its own resources
// how often it was found, requested, granted and rated.
//
// Counts are kept per time bucket (an hour by default) for a retention
// window (seven days by default), so a report can cover "the last 24h",
// and as totals since the counters began, which outlive the window. Every
// keyed table is capped (1,000 keys by default): past the cap the least
// counted key is evicted, so a flood of random queries cannot grow memory
// without bound.
//
// Of other peers' queries only per-term counts are kept, unless the
// participant opts in with Options.RecordQueries, which keeps their whole
// (canonical) queries as well. The participant's own unmet queries are kept
// whole: they are its own.
package demand

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Defaults of zero Options fields.
const (
	DefaultBucket    = time.Hour
	DefaultRetention = 7 * 24 * time.Hour
	DefaultMaxKeys   = 1000
	// DefaultTop is how many entries a report lists per table when asked
	// for none.
	DefaultTop = 20
)

// Options configure a Recorder.
type Options struct {
	// RecordQueries keeps the whole queries other peers sent, not only
	// their terms.
	RecordQueries bool
	// MaxKeys caps each table (terms, queries, resources). Zero means
	// DefaultMaxKeys.
	MaxKeys int
	// Bucket is the time resolution of a report's window. Zero means
	// DefaultBucket.
	Bucket time.Duration
	// Retention is how long bucketed counts are kept. Zero means
	// DefaultRetention.
	Retention time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Recorder counts demand. Its methods are safe for concurrent use; the
// zero Recorder is not usable, get one from New.
type Recorder struct {
	opt Options

	mu    sync.Mutex
	start time.Time // when counting began (survives a snapshot)

	findsRun, findsUnmet, findsServed, resultsServed series
	connectsRequested, connectsGranted               series

	runTerms      *table // terms of the participant's own finds
	unmet         *table // the participant's own queries that found nothing
	servedTerms   *table // terms of the finds served to other peers
	servedQueries *table // whole queries served, only with RecordQueries
	resources     *resTable
}

// New returns an empty recorder.
func New(opt Options) *Recorder {
	if opt.MaxKeys <= 0 {
		opt.MaxKeys = DefaultMaxKeys
	}
	if opt.Bucket <= 0 {
		opt.Bucket = DefaultBucket
	}
	if opt.Retention <= 0 {
		opt.Retention = DefaultRetention
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Recorder{
		opt:           opt,
		start:         opt.Now(),
		runTerms:      newTable(opt.MaxKeys),
		unmet:         newTable(opt.MaxKeys),
		servedTerms:   newTable(opt.MaxKeys),
		servedQueries: newTable(opt.MaxKeys),
		resources:     &resTable{max: opt.MaxKeys, m: map[string]*resEntry{}},
	}
}

// RecordQueries reports whether whole queries of other peers are kept.
func (r *Recorder) RecordQueries() bool { return r.opt.RecordQueries }

// now returns the current bucket and the oldest bucket still retained.
func (r *Recorder) now() (at, oldest int64) {
	t := r.opt.Now()
	at = t.UnixNano() / int64(r.opt.Bucket)
	oldest = at - int64(r.opt.Retention/r.opt.Bucket)
	return at, oldest
}

// FindRun records a find the participant ran: its terms, its canonical
// query, and how many results it yielded. A find with no result is unmet.
func (r *Recorder) FindRun(terms []string, query string, results int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, old := r.now()
	res := int64(results)
	r.findsRun.add(at, old, 1, res)
	for _, t := range terms {
		r.runTerms.add(t, at, old, 1, res)
	}
	if results == 0 {
		r.findsUnmet.add(at, old, 1, 0)
		r.unmet.add(query, at, old, 1, 0)
	}
}

// Served records a find this node answered for another peer: the terms of
// its query, the whole query (kept only with RecordQueries), how many
// results it was answered with and the IDs of those results.
func (r *Recorder) Served(terms []string, query string, results int, ids []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, old := r.now()
	res := int64(results)
	r.findsServed.add(at, old, 1, res)
	r.resultsServed.add(at, old, res, 0)
	for _, t := range terms {
		r.servedTerms.add(t, at, old, 1, res)
	}
	if r.opt.RecordQueries && query != "" {
		r.servedQueries.add(query, at, old, 1, res)
	}
	for _, id := range ids {
		r.resources.get(id).Found.add(at, old, 1, 0)
	}
}

// ConnectRequested records a connect request for the own resource id.
func (r *Recorder) ConnectRequested(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, old := r.now()
	r.connectsRequested.add(at, old, 1, 0)
	r.resources.get(id).Requested.add(at, old, 1, 0)
}

// ConnectGranted records a granted connect request for the own resource id.
func (r *Recorder) ConnectGranted(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, old := r.now()
	r.connectsGranted.add(at, old, 1, 0)
	r.resources.get(id).Granted.add(at, old, 1, 0)
}

// Rated records a rating of the own resource id.
func (r *Recorder) Rated(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, old := r.now()
	r.resources.get(id).Rated.add(at, old, 1, 0)
}

// Count is one key of a table and its counts in a report's window.
type Count struct {
	// Key is a term or a canonical query.
	Key string
	// Count is how many finds had it.
	Count int64
	// Results is how many results those finds had, run or served.
	Results int64
}

// ResourceCount is the demand for one own resource.
type ResourceCount struct {
	ID                               string
	Found, Requested, Granted, Rated int64
}

// Report is what a recorder counted in a window.
type Report struct {
	// Since is the start of the window: the start of its oldest bucket, or
	// when counting began for a report of everything.
	Since time.Time

	FindsRun, FindsUnmet               int64
	FindsServed, ResultsServed         int64
	ConnectsRequested, ConnectsGranted int64

	// TopRunTerms are the terms of the participant's own finds, most
	// used first; Unmet its queries that found nothing, most run first.
	TopRunTerms, Unmet []Count
	// TopServedTerms are the terms of finds served to others, most asked
	// first; TopServedQueries their whole queries, empty unless
	// RecordQueries.
	TopServedTerms, TopServedQueries []Count
	// Resources are every resource with a count in the window, most found
	// first.
	Resources []ResourceCount
}

// Report returns the counts of the last since (rounded out to whole
// buckets, and at most the retention window), or every count since
// counting began when since is zero or negative. Each table lists at most
// top entries; zero means DefaultTop, negative means all.
func (r *Recorder) Report(since time.Duration, top int) Report {
	if top == 0 {
		top = DefaultTop
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, old := r.now()
	all := since <= 0
	from := old + 1
	if !all {
		// The window starts with the bucket that holds now - since.
		from = max(from, r.opt.Now().Add(-since).UnixNano()/int64(r.opt.Bucket))
	}
	sum := func(s *series) (int64, int64) {
		if all {
			return s.N, s.R
		}
		return s.sum(from)
	}
	rep := Report{Since: r.start}
	if !all {
		rep.Since = time.Unix(0, from*int64(r.opt.Bucket))
		if rep.Since.Before(r.start) {
			rep.Since = r.start
		}
	}
	rep.FindsRun, _ = sum(&r.findsRun)
	rep.FindsUnmet, _ = sum(&r.findsUnmet)
	rep.FindsServed, _ = sum(&r.findsServed)
	rep.ResultsServed, _ = sum(&r.resultsServed)
	rep.ConnectsRequested, _ = sum(&r.connectsRequested)
	rep.ConnectsGranted, _ = sum(&r.connectsGranted)
	rep.TopRunTerms = r.runTerms.top(sum, top)
	rep.Unmet = r.unmet.top(sum, top)
	rep.TopServedTerms = r.servedTerms.top(sum, top)
	rep.TopServedQueries = r.servedQueries.top(sum, top)
	for id, e := range r.resources.m {
		rc := ResourceCount{ID: id}
		rc.Found, _ = sum(&e.Found)
		rc.Requested, _ = sum(&e.Requested)
		rc.Granted, _ = sum(&e.Granted)
		rc.Rated, _ = sum(&e.Rated)
		if rc.Found+rc.Requested+rc.Granted+rc.Rated > 0 {
			rep.Resources = append(rep.Resources, rc)
		}
	}
	slices.SortFunc(rep.Resources, func(a, b ResourceCount) int {
		return cmp.Or(cmp.Compare(b.Found, a.Found), cmp.Compare(b.Requested, a.Requested), cmp.Compare(a.ID, b.ID))
	})
	if top > 0 && len(rep.Resources) > top {
		rep.Resources = rep.Resources[:top]
	}
	return rep
}

// series is a counter: totals since counting began, and counts per bucket
// for the retention window, oldest first.
type series struct {
	N, R   int64
	Points []point `json:",omitempty"`
}

type point struct {
	At   int64 // bucket number: Unix nanoseconds / bucket length
	N, R int64
}

func (s *series) add(at, oldest, n, r int64) {
	s.N += n
	s.R += r
	if k := len(s.Points); k > 0 && s.Points[k-1].At == at {
		s.Points[k-1].N += n
		s.Points[k-1].R += r
	} else {
		s.Points = append(s.Points, point{At: at, N: n, R: r})
	}
	s.prune(oldest)
}

// prune drops the buckets at or before oldest.
func (s *series) prune(oldest int64) {
	i := 0
	for i < len(s.Points) && s.Points[i].At <= oldest {
		i++
	}
	if i > 0 {
		s.Points = slices.Delete(s.Points, 0, i)
	}
}

// sum adds up the buckets from bucket from on.
func (s *series) sum(from int64) (n, r int64) {
	for _, p := range s.Points {
		if p.At >= from {
			n += p.N
			r += p.R
		}
	}
	return n, r
}

// table is a capped map of series. Past max keys, adding a new key evicts
// the one with the smallest total, the least recently counted among equals.
type table struct {
	max int
	m   map[string]*series
}

func newTable(max int) *table { return &table{max: max, m: map[string]*series{}} }

func (t *table) add(key string, at, oldest, n, r int64) {
	s, ok := t.m[key]
	if !ok {
		if len(t.m) >= t.max {
			t.evict()
		}
		s = &series{}
		t.m[key] = s
	}
	s.add(at, oldest, n, r)
}

func (t *table) evict() {
	var victim string
	var vs *series
	for k, s := range t.m {
		if vs == nil || s.N < vs.N || s.N == vs.N && last(s) < last(vs) || s.N == vs.N && last(s) == last(vs) && k < victim {
			victim, vs = k, s
		}
	}
	delete(t.m, victim)
}

func last(s *series) int64 {
	if len(s.Points) == 0 {
		return 0
	}
	return s.Points[len(s.Points)-1].At
}

func (t *table) top(sum func(*series) (int64, int64), top int) []Count {
	var out []Count
	for k, s := range t.m {
		if n, r := sum(s); n > 0 {
			out = append(out, Count{Key: k, Count: n, Results: r})
		}
	}
	slices.SortFunc(out, func(a, b Count) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(b.Results, a.Results), cmp.Compare(a.Key, b.Key))
	})
	if top > 0 && len(out) > top {
		out = out[:top]
	}
	return out
}

type resEntry struct {
	Found, Requested, Granted, Rated series
}

// resTable is a capped map of per-resource counters, evicting the resource
// with the fewest counts.
type resTable struct {
	max int
	m   map[string]*resEntry
}

func (e *resEntry) total() int64 { return e.Found.N + e.Requested.N + e.Granted.N + e.Rated.N }

func (t *resTable) get(id string) *resEntry {
	if e, ok := t.m[id]; ok {
		return e
	}
	if len(t.m) >= t.max {
		var victim string
		var ve *resEntry
		for k, e := range t.m {
			if ve == nil || e.total() < ve.total() || e.total() == ve.total() && k < victim {
				victim, ve = k, e
			}
		}
		delete(t.m, victim)
	}
	e := &resEntry{}
	t.m[id] = e
	return e
}

// snapshot is the persistent form of a recorder.
type snapshot struct {
	Version           int
	Start             time.Time
	Bucket            time.Duration
	FindsRun          series
	FindsUnmet        series
	FindsServed       series
	ResultsServed     series
	ConnectsRequested series
	ConnectsGranted   series
	RunTerms          map[string]*series
	Unmet             map[string]*series
	ServedTerms       map[string]*series
	ServedQueries     map[string]*series `json:",omitempty"`
	Resources         map[string]*resEntry
}

// MarshalBinary returns a snapshot of the counts, for Restore after a
// restart.
func (r *Recorder) MarshalBinary() ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := snapshot{
		Version: 1, Start: r.start, Bucket: r.opt.Bucket,
		FindsRun: r.findsRun, FindsUnmet: r.findsUnmet, FindsServed: r.findsServed, ResultsServed: r.resultsServed,
		ConnectsRequested: r.connectsRequested, ConnectsGranted: r.connectsGranted,
		RunTerms: r.runTerms.m, Unmet: r.unmet.m, ServedTerms: r.servedTerms.m, Resources: r.resources.m,
	}
	if r.opt.RecordQueries {
		s.ServedQueries = r.servedQueries.m
	}
	return json.Marshal(s)
}

// UnmarshalBinary replaces the counts with a snapshot from MarshalBinary.
// Buckets past the retention window and keys past the caps are dropped; a
// snapshot with another bucket length keeps only its totals. Whole queries
// of others are dropped unless RecordQueries.
func (r *Recorder) UnmarshalBinary(b []byte) error {
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("demand snapshot: %w", err)
	}
	if s.Version != 1 {
		return fmt.Errorf("demand snapshot: unknown version %d", s.Version)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, old := r.now()
	fix := func(x series) series {
		if s.Bucket != r.opt.Bucket {
			x.Points = nil
		}
		x.prune(old)
		return x
	}
	fixTable := func(m map[string]*series) *table {
		t := newTable(r.opt.MaxKeys)
		for k, v := range m {
			if v == nil {
				continue
			}
			x := fix(*v)
			t.m[k] = &x
		}
		for len(t.m) > t.max {
			t.evict()
		}
		return t
	}
	if !s.Start.IsZero() {
		r.start = s.Start
	}
	r.findsRun, r.findsUnmet = fix(s.FindsRun), fix(s.FindsUnmet)
	r.findsServed, r.resultsServed = fix(s.FindsServed), fix(s.ResultsServed)
	r.connectsRequested, r.connectsGranted = fix(s.ConnectsRequested), fix(s.ConnectsGranted)
	r.runTerms, r.unmet, r.servedTerms = fixTable(s.RunTerms), fixTable(s.Unmet), fixTable(s.ServedTerms)
	r.servedQueries = newTable(r.opt.MaxKeys)
	if r.opt.RecordQueries {
		r.servedQueries = fixTable(s.ServedQueries)
	}
	r.resources = &resTable{max: r.opt.MaxKeys, m: map[string]*resEntry{}}
	for id, e := range s.Resources {
		if e == nil {
			continue
		}
		ne := &resEntry{}
		ne.Found, ne.Requested, ne.Granted, ne.Rated = fix(e.Found), fix(e.Requested), fix(e.Granted), fix(e.Rated)
		if len(r.resources.m) >= r.resources.max {
			break
		}
		r.resources.m[id] = ne
	}
	return nil
}
