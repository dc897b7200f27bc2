// Package announce spreads signed resources over gossipsub, so that watchers
// learn of new, changed and withdrawn resources as it happens instead of
// polling the DHT.
//
// Each index term has a topic. A provider publishes each new version of a
// resource (a tombstone when it withdraws one) on the topics of the
// resource's terms; a watcher subscribes to the topics of its query's lookup
// terms. Peers for a topic are found through the DHT (routing discovery),
// since a topic's publishers and subscribers are rarely neighbours.
// Messages are validated before they propagate: a bad signature, a
// publisher that is not the owner, a term the resource does not carry, or a
// publisher over its rate is rejected, which gossipsub holds against the
// peer that forwarded it.
package announce

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/discovery"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pullnet/pullnet/protocol/signed"
)

// TopicPrefix starts every announcement topic; the term follows.
const TopicPrefix = "/pullnet/announce/1/"

// Topic is the topic of an index term.
func Topic(term string) string { return TopicPrefix + term }

const (
	// MaxMessageSize caps an announcement: one signed resource.
	MaxMessageSize = signed.MaxEnvelopeSize + 1<<10
	// MaxPerPeerPerMinute bounds the announcements one publisher may make
	// on one topic per minute; more are rejected.
	MaxPerPeerPerMinute = 30
	// PublishWait bounds how long a publish waits for peers on a topic.
	// A term nobody watches has none, and that is fine.
	PublishWait = 30 * time.Second
	// maxPublishers bounds the rate limiter's memory.
	maxPublishers = 10_000
)

// TopicScore weighs what happens on each announcement topic, and on the
// other pullnet topics sharing the router: only invalid deliveries count,
// decaying by a tenth a second.
var TopicScore = &pubsub.TopicScoreParams{
	SkipAtomicValidation: true,
	TopicWeight:          1,
	// Unused (weight 0), but gossipsub divides by it for every peer in a
	// mesh: zero would crash the scorer.
	TimeInMeshQuantum:              time.Second,
	InvalidMessageDeliveriesWeight: -10,
	InvalidMessageDeliveriesDecay:  0.9,
}

// Announcement is one verified resource version heard on a topic.
type Announcement struct {
	Record signed.Record
	Term   string
}

// Stats counts announcements.
type Stats struct {
	Published atomic.Int64
	Accepted  atomic.Int64
	Rejected  atomic.Int64 // bad signature, not the owner, foreign term, oversized
	Throttled atomic.Int64 // over a publisher's rate
}

// Service publishes and subscribes to announcements.
type Service struct {
	ps  *pubsub.PubSub
	log *slog.Logger

	Stats Stats

	mu     sync.Mutex
	topics map[string]*pubsub.Topic
	rate   map[rateKey]*window
	scores atomic.Pointer[map[peer.ID]float64]
}

type rateKey struct {
	from  peer.ID
	topic string
}

type window struct {
	start time.Time
	n     int
}

// New starts gossipsub on h, finding topic peers through disc (nil: only
// among the peers h is connected to).
func New(ctx context.Context, h host.Host, disc discovery.Discovery, logger *slog.Logger) (*Service, error) {
	s := &Service{log: logger, topics: map[string]*pubsub.Topic{}, rate: map[rateKey]*window{}}
	opts := []pubsub.Option{
		pubsub.WithMaxMessageSize(MaxMessageSize),
		// Peer scoring: every message a validator rejects counts against
		// the peer that delivered it (squared, per topic), so a peer that
		// forwards forgeries or floods soon falls below the thresholds and
		// is no longer gossiped with, then ignored.
		pubsub.WithPeerScore(&pubsub.PeerScoreParams{
			Topics:               map[string]*pubsub.TopicScoreParams{},
			SkipAtomicValidation: true,
			DecayInterval:        time.Second,
			DecayToZero:          0.01,
		}, &pubsub.PeerScoreThresholds{
			SkipAtomicValidation: true,
			GossipThreshold:      -10,
			PublishThreshold:     -50,
			GraylistThreshold:    -80,
		}),
		pubsub.WithPeerScoreInspect(s.keepScores, time.Second),
		// Messages are signed by their publisher and checked by pubsub, so
		// GetFrom is the publisher, not whoever forwarded the message.
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		// A node's own messages go to every topic peer it knows, not just
		// its mesh: go-libp2p-pubsub no longer does this by default, and
		// without it a message published before the first heartbeat has
		// grafted a mesh reaches nobody.
		pubsub.WithFloodPublish(true),
	}
	if disc != nil {
		opts = append(opts, pubsub.WithDiscovery(disc))
	}
	ps, err := pubsub.NewGossipSub(ctx, h, opts...)
	if err != nil {
		return nil, fmt.Errorf("start gossipsub: %w", err)
	}
	s.ps = ps
	return s, nil
}

// PubSub is the gossipsub router announcements travel on, for other
// pullnet topics (ratings) to share it and its peer scoring.
func (s *Service) PubSub() *pubsub.PubSub { return s.ps }

func (s *Service) keepScores(scores map[peer.ID]float64) { s.scores.Store(&scores) }

// Score is gossipsub's score of peer p, as last inspected (every second);
// negative once p has delivered invalid announcements.
func (s *Service) Score(p peer.ID) float64 {
	m := s.scores.Load()
	if m == nil {
		return 0
	}
	return (*m)[p]
}

// join returns the topic of term, joined once with its validator.
func (s *Service) join(term string) (*pubsub.Topic, error) {
	name := Topic(term)
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.topics[name]; ok {
		return t, nil
	}
	if err := s.ps.RegisterTopicValidator(name, s.validator(term)); err != nil {
		return nil, fmt.Errorf("validator for %s: %w", name, err)
	}
	t, err := s.ps.Join(name)
	if err != nil {
		return nil, fmt.Errorf("join %s: %w", name, err)
	}
	if err := t.SetScoreParams(TopicScore); err != nil {
		return nil, fmt.Errorf("score %s: %w", name, err)
	}
	s.topics[name] = t
	return t, nil
}

func (s *Service) validator(term string) func(context.Context, peer.ID, *pubsub.Message) pubsub.ValidationResult {
	topic := Topic(term)
	return func(_ context.Context, _ peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		if len(m.Data) > MaxMessageSize {
			s.Stats.Rejected.Add(1)
			return pubsub.ValidationReject
		}
		rec, err := signed.OpenResource(m.Data)
		if err != nil {
			s.Stats.Rejected.Add(1)
			s.log.Debug("announce: rejected a record that does not verify", "from", m.GetFrom(), "err", err)
			return pubsub.ValidationReject
		}
		if rec.Owner != m.GetFrom() {
			s.Stats.Rejected.Add(1)
			s.log.Debug("announce: rejected a record announced by a peer that does not own it", "from", m.GetFrom())
			return pubsub.ValidationReject
		}
		if !slices.Contains(rec.Resource.IndexTerms(), term) {
			s.Stats.Rejected.Add(1)
			s.log.Debug("announce: rejected a record on a term it does not carry", "from", m.GetFrom(), "term", term)
			return pubsub.ValidationReject
		}
		if !s.allow(m.GetFrom(), topic) {
			s.Stats.Throttled.Add(1)
			return pubsub.ValidationReject
		}
		m.ValidatorData = rec
		return pubsub.ValidationAccept
	}
}

// allow counts one announcement of from on topic and reports whether it is
// within the rate.
func (s *Service) allow(from peer.ID, topic string) bool {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	k := rateKey{from, topic}
	w, ok := s.rate[k]
	if !ok || now.Sub(w.start) > time.Minute {
		if !ok && len(s.rate) >= maxPublishers {
			for old, ow := range s.rate {
				if now.Sub(ow.start) > time.Minute {
					delete(s.rate, old)
				}
			}
			if len(s.rate) >= maxPublishers {
				return false
			}
		}
		w = &window{start: now}
		s.rate[k] = w
	}
	w.n++
	return w.n <= MaxPerPeerPerMinute
}

// Publish announces rec on the topics of its index terms. It returns when
// every topic has been tried. Topics with known peers get the announcement
// at once; the others wait up to PublishWait for discovery to find a peer
// (a term nobody watches has none, and that is fine). All topics are tried
// at the same time, so the waits overlap.
func (s *Service) Publish(ctx context.Context, rec signed.Record) {
	var wg sync.WaitGroup
	for _, term := range rec.Resource.IndexTerms() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t, err := s.join(term)
			if err != nil {
				s.log.Debug("announce: join", "term", term, "err", err)
				return
			}
			var opts []pubsub.PubOpt
			if len(t.ListPeers()) == 0 {
				opts = append(opts, pubsub.WithReadiness(pubsub.MinTopicSize(1)))
			}
			pctx, cancel := context.WithTimeout(ctx, PublishWait)
			defer cancel()
			if err := t.Publish(pctx, rec.Envelope, opts...); err != nil {
				s.log.Debug("announce: no watchers reached", "term", term, "err", err)
				return
			}
			s.Stats.Published.Add(1)
		}()
	}
	wg.Wait()
}

// Subscribe delivers the verified announcements on the topics of terms
// until ctx ends.
func (s *Service) Subscribe(ctx context.Context, terms []string) (<-chan Announcement, error) {
	out := make(chan Announcement, 64)
	var subs []*pubsub.Subscription
	for _, term := range terms {
		t, err := s.join(term)
		if err != nil {
			for _, sub := range subs {
				sub.Cancel()
			}
			return nil, err
		}
		sub, err := t.Subscribe()
		if err != nil {
			for _, sub := range subs {
				sub.Cancel()
			}
			return nil, fmt.Errorf("subscribe to %s: %w", term, err)
		}
		subs = append(subs, sub)
	}
	var wg sync.WaitGroup
	for i, sub := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer sub.Cancel()
			for {
				m, err := sub.Next(ctx)
				if err != nil {
					return
				}
				rec, ok := m.ValidatorData.(signed.Record)
				if !ok {
					continue
				}
				s.Stats.Accepted.Add(1)
				select {
				case out <- Announcement{Record: rec, Term: terms[i]}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	return out, nil
}
