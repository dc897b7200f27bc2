// Package ratings keeps the ratings a node knows, its own and those heard
// from peers, in the node's datastore: one per rater and session, a later
// version replacing an earlier one. Every change is reported as a change of
// the rater's aggregate opinion of the subject, which is what the trust
// computation (internal/trust) consumes.
//
// The book is bounded: at most MaxRatings in all and MaxPerRater from any
// one rater, so a peer that mints receipts for itself cannot fill a node's
// disk. Ratings older than signed.MaxRatingAge are dropped when the book
// opens.
package ratings

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pullnet/pullnet/internal/store"
	"github.com/pullnet/pullnet/protocol/signed"
)

// Defaults of Config's caps.
const (
	DefaultMaxRatings  = 200_000
	DefaultMaxPerRater = 2_000
)

// Outcome is what Put did with a rating.
type Outcome int

const (
	// Added: a rating of a session the book had no rating of by this rater.
	Added Outcome = iota
	// Replaced: a later version of a rating the book held.
	Replaced
	// Duplicate: the book holds this version or a later one; nothing changed.
	Duplicate
	// Full: the book or the rater's share of it is full; nothing changed.
	Full
)

func (o Outcome) String() string {
	switch o {
	case Added:
		return "added"
	case Replaced:
		return "replaced"
	case Duplicate:
		return "duplicate"
	case Full:
		return "full"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Change is how one Put or drop moved a rater's aggregate opinion of a
// subject: the sum of its scores moved by DeltaSum, their count by
// DeltaCount.
type Change struct {
	Rater, Subject peer.ID
	DeltaSum       float64
	DeltaCount     int
}

// Config configures a Book.
type Config struct {
	// Store holds the ratings; required. Writes are synced before Put
	// returns.
	Store ds.Datastore
	// OnChange, if set, hears every change of an aggregate opinion, also
	// those of the ratings loaded by Open. It is called with the book's
	// lock held: it must not call back into the book.
	OnChange func(Change)
	// MaxRatings caps the book; zero means DefaultMaxRatings.
	MaxRatings int
	// MaxPerRater caps one rater's ratings; zero means DefaultMaxPerRater.
	MaxPerRater int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil discards.
	Logger *slog.Logger
}

// Stats counts what the book was offered.
type Stats struct {
	Added, Replaced, Duplicate, Full atomic.Int64
}

// stored is a rating as it rests in the datastore.
type stored struct {
	// ReceivedMS is when this node first held this version.
	ReceivedMS int64  `json:"received_ms"`
	Envelope   []byte `json:"envelope"`
}

// entry is the book's in-memory index of a rating; envelopes stay on disk.
type entry struct {
	rater, subject peer.ID
	score          float64
	createdMS      int64
	receivedMS     int64
	size           int
}

// Book is a node's ratings. Its methods are safe for concurrent use.
type Book struct {
	cfg   Config
	table store.Table[stored]
	Stats Stats

	mu       sync.Mutex
	entries  map[string]*entry // rating key → entry
	perRater map[peer.ID]int
}

// Prefix is where the book keeps its ratings in the datastore.
var Prefix = ds.NewKey("/pullnet/ratings")

// Open loads the book from cfg.Store, dropping what no longer verifies or
// has grown too old.
func Open(ctx context.Context, cfg Config) (*Book, error) {
	if cfg.Store == nil {
		return nil, errors.New("ratings: no store")
	}
	if cfg.MaxRatings <= 0 {
		cfg.MaxRatings = DefaultMaxRatings
	}
	if cfg.MaxPerRater <= 0 {
		cfg.MaxPerRater = DefaultMaxPerRater
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Book{cfg: cfg, table: store.Table[stored]{DS: cfg.Store, Prefix: Prefix}, entries: map[string]*entry{}, perRater: map[peer.ID]int{}}
	now := cfg.Now()
	var drop []string
	err := b.table.Each(ctx, func(key string, v stored) error {
		rec, err := signed.OpenRating(v.Envelope, now)
		if err != nil || rec.Rating.Key() != key {
			drop = append(drop, key)
			return nil
		}
		b.mu.Lock()
		b.insert(key, rec, v.ReceivedMS)
		b.mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ratings: load: %w", err)
	}
	for _, key := range drop {
		if err := b.table.Delete(ctx, key); err != nil {
			return nil, fmt.Errorf("ratings: drop an old rating: %w", err)
		}
	}
	if len(drop) > 0 {
		cfg.Logger.Info("ratings: dropped ratings too old to keep", "count", len(drop))
	}
	return b, nil
}

// insert indexes rec under key; b.mu held.
func (b *Book) insert(key string, rec signed.RatingRecord, receivedMS int64) {
	r := rec.Rating
	e := &entry{rater: r.Rater, subject: r.Subject, score: r.Score, createdMS: r.Created.UnixMilli(), receivedMS: receivedMS, size: len(rec.Envelope)}
	if old, ok := b.entries[key]; ok {
		b.entries[key] = e
		b.change(Change{Rater: r.Rater, Subject: r.Subject, DeltaSum: r.Score - old.score})
		return
	}
	b.entries[key] = e
	b.perRater[r.Rater]++
	b.change(Change{Rater: r.Rater, Subject: r.Subject, DeltaSum: r.Score, DeltaCount: 1})
}

func (b *Book) change(c Change) {
	if b.cfg.OnChange != nil {
		b.cfg.OnChange(c)
	}
}

// check reports what Put would do with r; b.mu held.
func (b *Book) check(r signed.Rating) Outcome {
	if old, ok := b.entries[r.Key()]; ok {
		if r.Created.UnixMilli() <= old.createdMS {
			return Duplicate
		}
		return Replaced
	}
	if len(b.entries) >= b.cfg.MaxRatings || b.perRater[r.Rater] >= b.cfg.MaxPerRater {
		return Full
	}
	return Added
}

// Check reports what Put would do with r, without doing it: a gossip
// validator uses it to ignore what it already has.
func (b *Book) Check(r signed.Rating) Outcome {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.check(r)
}

// Put stores a verified rating (from signed.OpenRating or SealRating) and
// reports what it did. Added and Replaced are synced to disk before Put
// returns.
func (b *Book) Put(ctx context.Context, rec signed.RatingRecord) (Outcome, error) {
	key := rec.Rating.Key()
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.check(rec.Rating)
	switch out {
	case Duplicate:
		b.Stats.Duplicate.Add(1)
		return out, nil
	case Full:
		b.Stats.Full.Add(1)
		return out, nil
	}
	received := b.cfg.Now().UnixMilli()
	// Written under the lock, so that two versions of one rating cannot
	// land on disk in the wrong order.
	if err := b.table.Put(ctx, key, stored{ReceivedMS: received, Envelope: rec.Envelope}); err != nil {
		return out, fmt.Errorf("ratings: store: %w", err)
	}
	b.insert(key, rec, received)
	if out == Added {
		b.Stats.Added.Add(1)
	} else {
		b.Stats.Replaced.Add(1)
	}
	return out, nil
}

// Len is the number of ratings in the book.
func (b *Book) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.entries)
}

// Since returns the envelopes of the ratings the book received at or after
// sinceMS (Unix milliseconds), newest first, up to maxBytes of envelopes
// in all.
func (b *Book) Since(ctx context.Context, sinceMS int64, maxBytes int) ([][]byte, error) {
	type pick struct {
		key        string
		receivedMS int64
		size       int
	}
	b.mu.Lock()
	var picks []pick
	for k, e := range b.entries {
		if e.receivedMS >= sinceMS {
			picks = append(picks, pick{k, e.receivedMS, e.size})
		}
	}
	b.mu.Unlock()
	slices.SortFunc(picks, func(x, y pick) int { return cmp.Compare(y.receivedMS, x.receivedMS) })
	var out [][]byte
	total := 0
	for _, p := range picks {
		if total+p.size > maxBytes {
			break
		}
		v, err := b.table.Get(ctx, p.key)
		if errors.Is(err, ds.ErrNotFound) {
			continue // replaced or dropped meanwhile
		}
		if err != nil {
			return out, fmt.Errorf("ratings: read: %w", err)
		}
		total += len(v.Envelope)
		out = append(out, v.Envelope)
	}
	return out, nil
}

// About returns the ratings whose subject is p (or, with p empty, all
// ratings), at most limit, newest first.
func (b *Book) About(ctx context.Context, p peer.ID, limit int) ([]signed.Rating, error) {
	b.mu.Lock()
	var keys []string
	for k, e := range b.entries {
		if p == "" || e.subject == p {
			keys = append(keys, k)
		}
	}
	created := func(k string) int64 { return b.entries[k].createdMS }
	slices.SortFunc(keys, func(x, y string) int { return cmp.Compare(created(y), created(x)) })
	b.mu.Unlock()
	if len(keys) > limit {
		keys = keys[:limit]
	}
	out := make([]signed.Rating, 0, len(keys))
	now := b.cfg.Now()
	for _, k := range keys {
		v, err := b.table.Get(ctx, k)
		if errors.Is(err, ds.ErrNotFound) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("ratings: read: %w", err)
		}
		rec, err := signed.OpenRating(v.Envelope, now)
		if err != nil {
			continue // aged out since the book opened
		}
		out = append(out, rec.Rating)
	}
	return out, nil
}

// NewestReceived is when the book last took a rating, zero when empty.
func (b *Book) NewestReceived() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	var newest int64
	for _, e := range b.entries {
		newest = max(newest, e.receivedMS)
	}
	if newest == 0 {
		return time.Time{}
	}
	return time.UnixMilli(newest)
}
