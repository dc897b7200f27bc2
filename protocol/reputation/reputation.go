// Package reputation spreads ratings between peers, two ways.
//
// Gossip: every rating is published on one gossipsub topic (Topic). A
// validator opens each message before it propagates: a rating that does not
// verify (forged receipt, a rater who took no part in the session, bad
// times, oversized) is rejected, which gossipsub's peer scoring holds
// against the peer that delivered it; one the node already has is ignored;
// a new one is stored in the node's book.
//
// Sync (/pullnet/reputation/1.0.0): gossip reaches only peers that are
// online. A newcomer, or a node back from a partition, pulls from a peer the
// ratings that peer received since a time, newest first, at most MaxSyncBytes
// per pull: bounded in bytes whatever the network's size. Pulled ratings go
// through the same checks as gossiped ones.
package reputation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio/pbio"

	"github.com/pullnet/pullnet/internal/ratings"
	wirev1 "github.com/pullnet/pullnet/proto/gen/pullnet/wire/v1"
	"github.com/pullnet/pullnet/protocol/announce"
	"github.com/pullnet/pullnet/protocol/signed"
	"github.com/pullnet/pullnet/protocol/streams"
)

// ID is the protocol ID of rating sync.
const ID protocol.ID = "/pullnet/reputation/1.0.0"

// Topic is the gossipsub topic ratings are published on.
const Topic = "/pullnet/ratings/1"

// ServiceName is the resource-manager service of the protocol's streams.
const ServiceName = "pullnet.reputation"

const (
	// MaxRequestSize caps a ReputationSyncRequest.
	MaxRequestSize = 64
	// MaxResponseSize caps one ReputationSyncResponse: one signed rating.
	MaxResponseSize = signed.MaxRatingEnvelopeSize + 256
	// MaxSyncBytes caps the envelopes of one pull, on both sides.
	MaxSyncBytes = 1 << 20
	// maxSyncRatings caps the ratings read in one pull: MaxSyncBytes of the
	// smallest possible ratings.
	maxSyncRatings = MaxSyncBytes / 200
	// StreamTimeout bounds a whole exchange on either side.
	StreamTimeout = 30 * time.Second
	// MinPullInterval is how often one peer may pull from this node; a
	// faster peer is refused.
	MinPullInterval = 10 * time.Second
	// MaxPerPublisherPerMinute bounds the ratings one publisher may gossip
	// per minute; more are rejected.
	MaxPerPublisherPerMinute = 120
	// maxTracked bounds the per-peer maps of the rate limits.
	maxTracked = 10_000
)

// Book is where ratings are kept (internal/ratings.Book).
type Book interface {
	Check(signed.Rating) ratings.Outcome
	Put(context.Context, signed.RatingRecord) (ratings.Outcome, error)
	Since(ctx context.Context, sinceMS int64, maxBytes int) ([][]byte, error)
}

// Stats counts ratings heard, by gossip or sync, and what became of them.
// No rejected rating reaches the book, so none changes anyone's trust.
type Stats struct {
	Accepted  atomic.Int64 // new ratings and new versions stored
	Duplicate atomic.Int64 // already held (not a fault: gossip repeats)
	Forged    atomic.Int64 // bad signature, forged receipt, signer not the rater
	NotParty  atomic.Int64 // rater took no part in the session
	BadTime   atomic.Int64 // created in the future, before the session, or too long ago
	Malformed atomic.Int64 // garbage, oversized, score or comment out of bounds
	Throttled atomic.Int64 // over a publisher's rate
	Full      atomic.Int64 // the book or the rater's share of it is full
	Pulls     atomic.Int64 // syncs this node made
	Served    atomic.Int64 // syncs this node answered
}

// Service gossips ratings and answers and makes sync pulls.
type Service struct {
	host  host.Host
	book  Book
	now   func() time.Time
	log   *slog.Logger
	topic *pubsub.Topic
	sub   *pubsub.Subscription

	Stats Stats

	mu        sync.Mutex
	published map[peer.ID]*window // gossip publishers' rate
	pulled    map[peer.ID]time.Time
}

type window struct {
	start time.Time
	n     int
}

// New joins the ratings topic on ps, with its validator, and registers the
// sync handler on h. now is the clock ratings are checked against (nil:
// time.Now).
func New(h host.Host, ps *pubsub.PubSub, book Book, now func() time.Time, logger *slog.Logger) (*Service, error) {
	if now == nil {
		now = time.Now
	}
	s := &Service{host: h, book: book, now: now, log: logger, published: map[peer.ID]*window{}, pulled: map[peer.ID]time.Time{}}
	if err := ps.RegisterTopicValidator(Topic, s.validate); err != nil {
		return nil, fmt.Errorf("reputation: validator: %w", err)
	}
	t, err := ps.Join(Topic)
	if err != nil {
		return nil, fmt.Errorf("reputation: join %s: %w", Topic, err)
	}
	if err := t.SetScoreParams(announce.TopicScore); err != nil {
		return nil, fmt.Errorf("reputation: score %s: %w", Topic, err)
	}
	// Subscribed, so that this node is in the topic's mesh and forwards
	// ratings; the validator has stored each one already.
	if s.sub, err = t.Subscribe(); err != nil {
		return nil, fmt.Errorf("reputation: subscribe: %w", err)
	}
	s.topic = t
	go func() {
		for {
			if _, err := s.sub.Next(context.Background()); err != nil {
				return
			}
		}
	}()
	h.SetStreamHandler(ID, s.handle)
	return s, nil
}

// Close leaves the topic and removes the sync handler.
func (s *Service) Close() {
	s.host.RemoveStreamHandler(ID)
	s.sub.Cancel()
	_ = s.topic.Close()
}

// Publish stores rec (a rating this node made) and gossips it. The rating
// is kept even when no peer hears it now: peers pull it later.
func (s *Service) Publish(ctx context.Context, rec signed.RatingRecord) error {
	// Stored first, so the rating is durable before anyone hears of it.
	if _, err := s.book.Put(ctx, rec); err != nil {
		return err
	}
	if err := s.topic.Publish(ctx, rec.Envelope); err != nil {
		return fmt.Errorf("reputation: publish: %w", err)
	}
	return nil
}

// Peers is the number of peers in the ratings topic's mesh or fan-out.
func (s *Service) Peers() int { return len(s.topic.ListPeers()) }

func (s *Service) validate(ctx context.Context, _ peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	if m.GetFrom() == s.host.ID() {
		// Our own publish: Publish stored the rating first, so the book
		// would call it a duplicate.
		if _, err := signed.OpenRating(m.Data, s.now()); err != nil {
			return pubsub.ValidationReject
		}
		return pubsub.ValidationAccept
	}
	if !s.allowPublisher(m.GetFrom()) {
		s.Stats.Throttled.Add(1)
		return pubsub.ValidationReject
	}
	switch s.take(ctx, m.Data) {
	case taken:
		return pubsub.ValidationAccept
	case held:
		return pubsub.ValidationIgnore
	default:
		s.log.Debug("reputation: rejected a rating", "from", m.GetFrom())
		return pubsub.ValidationReject
	}
}

type verdict int

const (
	taken    verdict = iota // stored
	held                    // nothing new, or no room: not the sender's fault
	rejected                // invalid
)

// take checks a rating heard from a peer and stores it, counting the
// outcome.
func (s *Service) take(ctx context.Context, env []byte) verdict {
	rec, err := signed.OpenRating(env, s.now())
	if err != nil {
		s.countRejected(err)
		return rejected
	}
	if s.book.Check(rec.Rating) == ratings.Duplicate {
		s.Stats.Duplicate.Add(1)
		return held
	}
	out, err := s.book.Put(ctx, rec)
	switch {
	case err != nil:
		s.log.Warn("reputation: could not store a rating", "err", err)
		return held
	case out == ratings.Duplicate:
		s.Stats.Duplicate.Add(1)
		return held
	case out == ratings.Full:
		s.Stats.Full.Add(1)
		return held
	}
	s.Stats.Accepted.Add(1)
	return taken
}

func (s *Service) countRejected(err error) {
	switch {
	case errors.Is(err, signed.ErrBadSignature), errors.Is(err, signed.ErrNotOwner):
		s.Stats.Forged.Add(1)
	case errors.Is(err, signed.ErrNotParty):
		s.Stats.NotParty.Add(1)
	case errors.Is(err, signed.ErrBadTime):
		s.Stats.BadTime.Add(1)
	default:
		s.Stats.Malformed.Add(1)
	}
}

// allowPublisher counts one gossiped rating of from and reports whether it
// is within the rate.
func (s *Service) allowPublisher(from peer.ID) bool {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.published[from]
	if !ok || now.Sub(w.start) > time.Minute {
		if !ok && len(s.published) >= maxTracked {
			clear(s.published) // forget every window rather than grow
		}
		w = &window{start: now}
		s.published[from] = w
	}
	w.n++
	return w.n <= MaxPerPublisherPerMinute
}

func (s *Service) handle(str network.Stream) {
	release, err := streams.Accept(str, ServiceName, MaxRequestSize+MaxResponseSize, StreamTimeout)
	if err != nil {
		s.log.Debug("reputation: refused stream", "peer", str.Conn().RemotePeer(), "err", err)
		return
	}
	defer release()
	from := str.Conn().RemotePeer()
	req, err := streams.ReadMsg[wirev1.ReputationSyncRequest](str, MaxRequestSize)
	if err != nil {
		s.Stats.Malformed.Add(1)
		s.log.Info("reputation: dropped malformed sync request", "peer", from, "err", err)
		str.Reset()
		return
	}
	w := pbio.NewDelimitedWriter(str)
	if !s.allowPull(from) {
		_ = w.WriteMsg(&wirev1.ReputationSyncResponse{Error: fmt.Sprintf("too many pulls: at most one per %v", MinPullInterval)})
		_ = str.Close()
		return
	}
	limit := int(req.GetMaxBytes())
	if limit <= 0 || limit > MaxSyncBytes {
		limit = MaxSyncBytes
	}
	envs, err := s.book.Since(context.Background(), req.GetSinceUnixMs(), limit)
	if err != nil {
		_ = w.WriteMsg(&wirev1.ReputationSyncResponse{Error: "ratings unavailable"})
		s.log.Warn("reputation: read ratings for a pull", "err", err)
		_ = str.Close()
		return
	}
	s.Stats.Served.Add(1)
	for _, env := range envs {
		if err := w.WriteMsg(&wirev1.ReputationSyncResponse{Envelope: env}); err != nil {
			str.Reset()
			return
		}
	}
	_ = str.Close()
}

// allowPull reports whether from may pull now, and notes that it did.
func (s *Service) allowPull(from peer.ID) bool {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if last, ok := s.pulled[from]; ok && now.Sub(last) < MinPullInterval {
		return false
	}
	if len(s.pulled) >= maxTracked {
		clear(s.pulled)
	}
	s.pulled[from] = now
	return true
}

// ErrRemote is wrapped by errors that the remote peer reported.
var ErrRemote = errors.New("peer refused the pull")

// PullResult counts what one pull brought.
type PullResult struct {
	Received int // ratings read
	Accepted int // new ratings or versions stored
	Bytes    int // envelope bytes read
}

// Pull asks p for the ratings it received since since (by p's clock),
// stores those that verify and are new, and reports what it got.
func (s *Service) Pull(ctx context.Context, p peer.ID, since time.Time) (PullResult, error) {
	var res PullResult
	str, err := s.host.NewStream(network.WithAllowLimitedConn(ctx, "pullnet-reputation"), p, ID)
	if err != nil {
		return res, fmt.Errorf("pull ratings from %s: %w", p, err)
	}
	stop := streams.Bind(ctx, str, StreamTimeout)
	defer stop()
	if err := str.Scope().SetService(ServiceName); err != nil {
		str.Reset()
		return res, fmt.Errorf("pull ratings from %s: %w", p, err)
	}
	var sinceMS int64
	if !since.IsZero() {
		sinceMS = since.UnixMilli()
	}
	if err := pbio.NewDelimitedWriter(str).WriteMsg(&wirev1.ReputationSyncRequest{SinceUnixMs: sinceMS, MaxBytes: MaxSyncBytes}); err != nil {
		str.Reset()
		return res, fmt.Errorf("pull ratings from %s: %w", p, err)
	}
	_ = str.CloseWrite()
	s.Stats.Pulls.Add(1)
	for range maxSyncRatings {
		resp, err := streams.ReadMsg[wirev1.ReputationSyncResponse](str, MaxResponseSize)
		if err != nil {
			if errors.Is(err, io.EOF) {
				_ = str.Close()
				return res, nil
			}
			str.Reset()
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			return res, fmt.Errorf("pull ratings from %s: %w", p, err)
		}
		if e := resp.GetError(); e != "" {
			_ = str.Close()
			return res, fmt.Errorf("pull ratings from %s: %w: %s", p, ErrRemote, e)
		}
		res.Received++
		res.Bytes += len(resp.GetEnvelope())
		if res.Bytes > MaxSyncBytes {
			break // the peer sends more than it may
		}
		if s.take(ctx, resp.GetEnvelope()) == taken {
			res.Accepted++
		}
	}
	str.Reset()
	return res, nil
}
