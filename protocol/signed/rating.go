package signed

import (
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
	"google.golang.org/protobuf/proto"

	wirev1 "github.com/pullnet/pullnet/proto/gen/pullnet/wire/v1"
)

// RatingDomain is the signature domain of ratings.
const RatingDomain = "pullnet-rating"

var ratingCodec = []byte("/pullnet/rating")

// Limits on a rating.
const (
	// MaxRatingCommentLen caps a rating's comment in bytes.
	MaxRatingCommentLen = 512
	// MaxRatingEnvelopeSize caps a signed rating: the embedded receipt
	// (a few hundred bytes), the comment, the rater's key and signature.
	MaxRatingEnvelopeSize = 4 << 10
	// MaxRatingAge is how long after its creation a rating is still taken:
	// older ones are ancient history and dropped, so that a store of
	// ratings cannot grow without bound from replays.
	MaxRatingAge = 180 * 24 * time.Hour
	// ratingClockSkew is how far a rating may lie ahead of the receiver's
	// clock, or ahead of the session it rates.
	ratingClockSkew = 5 * time.Minute
)

// Errors of OpenRating, besides those of the envelope; wrapped with detail.
var (
	// ErrNotParty means the rater took no part in the rated session.
	ErrNotParty = errors.New("rater is not a party to the session")
	// ErrBadTime means a rating's timestamps are in the future or ancient.
	ErrBadTime = errors.New("rating time out of range")
)

// Rating is a participant's signed opinion of a session it took part in: a
// consumer rates the provider, a provider rates the consumer. It embeds the
// provider's signed receipt, so a rating without a real session cannot be
// made.
type Rating struct {
	// Receipt is the session the rating is about, as the provider signed it.
	Receipt Receipt
	// ReceiptEnvelope is the provider's signed receipt as embedded.
	ReceiptEnvelope []byte
	Rater           peer.ID
	// Subject is the other party of the session: the provider when the
	// consumer rates, the consumer when the provider does.
	Subject peer.ID
	// Score is from -1 (bad) to +1 (good), in steps of 0.01.
	Score   float64
	Comment string
	// Created orders two ratings of one receipt by one rater: the later
	// replaces the earlier. Milliseconds.
	Created time.Time
}

// Key identifies what a rating rates: one rater's opinion of one session.
// Two ratings with the same key are versions of each other.
func (r Rating) Key() string {
	return r.Receipt.Provider.String() + "/" + r.Receipt.Session + "/" + r.Rater.String()
}

// RatingRecord is a rating as its rater signed it.
type RatingRecord struct {
	Rating   Rating
	Envelope []byte
}

type ratingRecord struct{ msg wirev1.Rating }

func (*ratingRecord) Domain() string { return RatingDomain }
func (*ratingRecord) Codec() []byte  { return ratingCodec }
func (r *ratingRecord) MarshalRecord() ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(&r.msg)
}
func (r *ratingRecord) UnmarshalRecord(b []byte) error { return proto.Unmarshal(b, &r.msg) }

// ScoreHundredths converts a score in [-1, 1] to the wire's hundredths.
func ScoreHundredths(s float64) (int32, error) {
	if math.IsNaN(s) || s < -1 || s > 1 {
		return 0, fmt.Errorf("score %v is outside -1…+1", s)
	}
	return int32(math.Round(s * 100)), nil
}

// subjectOf returns the other party of rc for rater, or ErrNotParty.
func subjectOf(rc Receipt, rater peer.ID) (peer.ID, error) {
	if rc.Provider == rc.Consumer {
		return "", fmt.Errorf("%w: the session's provider and consumer are the same peer", ErrNotParty)
	}
	switch rater {
	case rc.Consumer:
		return rc.Provider, nil
	case rc.Provider:
		return rc.Consumer, nil
	}
	return "", fmt.Errorf("%w: %s rates session %s between %s and %s", ErrNotParty, rater, rc.Session, rc.Provider, rc.Consumer)
}

// checkRatingTimes checks that created is sane for a receipt issued at
// issued, as seen at now.
func checkRatingTimes(created, issued, now time.Time) error {
	switch {
	case created.After(now.Add(ratingClockSkew)):
		return fmt.Errorf("%w: created %v, in the future", ErrBadTime, created)
	case created.Before(now.Add(-MaxRatingAge)):
		return fmt.Errorf("%w: created %v, more than %v ago", ErrBadTime, created, MaxRatingAge)
	case created.Before(issued.Add(-ratingClockSkew)):
		return fmt.Errorf("%w: created %v, before its session began (%v)", ErrBadTime, created, issued)
	}
	return nil
}

// SealRating signs a rating of the session in receipt (the provider's
// signed receipt) with the rater's key. The rater must be the session's
// consumer or provider.
func SealRating(key crypto.PrivKey, receipt []byte, score float64, comment string, created time.Time) (RatingRecord, error) {
	rater, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return RatingRecord{}, fmt.Errorf("seal rating: %w", err)
	}
	rc, err := OpenReceipt(receipt)
	if err != nil {
		return RatingRecord{}, fmt.Errorf("seal rating: %w", err)
	}
	subject, err := subjectOf(rc, rater)
	if err != nil {
		return RatingRecord{}, fmt.Errorf("seal rating: %w", err)
	}
	hs, err := ScoreHundredths(score)
	if err != nil {
		return RatingRecord{}, fmt.Errorf("seal rating: %w: %v", ErrMalformed, err)
	}
	if len(comment) > MaxRatingCommentLen || !utf8.ValidString(comment) {
		return RatingRecord{}, fmt.Errorf("seal rating: %w: comment: at most %d bytes of UTF-8", ErrMalformed, MaxRatingCommentLen)
	}
	created = time.UnixMilli(created.UnixMilli()).UTC()
	if err := checkRatingTimes(created, rc.Issued, created); err != nil {
		return RatingRecord{}, fmt.Errorf("seal rating: %w", err)
	}
	rec := &ratingRecord{msg: wirev1.Rating{
		Receipt:       receipt,
		Rater:         []byte(rater),
		Score:         hs,
		Comment:       comment,
		CreatedUnixMs: created.UnixMilli(),
	}}
	env, err := record.Seal(rec, key)
	if err != nil {
		return RatingRecord{}, fmt.Errorf("seal rating: %w", err)
	}
	b, err := env.Marshal()
	if err != nil {
		return RatingRecord{}, fmt.Errorf("seal rating: %w", err)
	}
	if len(b) > MaxRatingEnvelopeSize {
		return RatingRecord{}, fmt.Errorf("seal rating: %w: %d bytes", ErrTooLarge, len(b))
	}
	return RatingRecord{Envelope: b, Rating: Rating{
		Receipt: rc, ReceiptEnvelope: receipt, Rater: rater, Subject: subject,
		Score: float64(hs) / 100, Comment: comment, Created: created,
	}}, nil
}

// OpenRating verifies a signed rating as seen at now: the rater's
// signature, the embedded receipt's (the provider's), that the rater is a
// party to the session, the score and comment limits, and that the rating
// was created neither in the future, nor before its session, nor more than
// MaxRatingAge ago.
func OpenRating(b []byte, now time.Time) (RatingRecord, error) {
	if len(b) > MaxRatingEnvelopeSize {
		return RatingRecord{}, fmt.Errorf("open rating: %w: %d bytes", ErrTooLarge, len(b))
	}
	var rec ratingRecord
	env, err := record.ConsumeTypedEnvelope(b, &rec)
	if err != nil {
		return RatingRecord{}, fmt.Errorf("open rating: %w: %v", ErrBadSignature, err)
	}
	if string(env.PayloadType) != string(ratingCodec) {
		return RatingRecord{}, fmt.Errorf("open rating: %w: payload type %q", ErrMalformed, env.PayloadType)
	}
	signer, err := peer.IDFromPublicKey(env.PublicKey)
	if err != nil {
		return RatingRecord{}, fmt.Errorf("open rating: %w: %v", ErrBadSignature, err)
	}
	m := &rec.msg
	rater, err := peer.IDFromBytes(m.GetRater())
	if err != nil {
		return RatingRecord{}, fmt.Errorf("open rating: %w: rater: %v", ErrMalformed, err)
	}
	if rater != signer {
		return RatingRecord{}, fmt.Errorf("open rating: %w: signed by %s, rater %s", ErrNotOwner, signer, rater)
	}
	rc, err := OpenReceipt(m.GetReceipt())
	if err != nil {
		return RatingRecord{}, fmt.Errorf("open rating: receipt: %w", err)
	}
	subject, err := subjectOf(rc, rater)
	if err != nil {
		return RatingRecord{}, fmt.Errorf("open rating: %w", err)
	}
	if s := m.GetScore(); s < -100 || s > 100 {
		return RatingRecord{}, fmt.Errorf("open rating: %w: score %d hundredths is outside -100…+100", ErrMalformed, s)
	}
	if c := m.GetComment(); len(c) > MaxRatingCommentLen || !utf8.ValidString(c) {
		return RatingRecord{}, fmt.Errorf("open rating: %w: comment: at most %d bytes of UTF-8", ErrMalformed, MaxRatingCommentLen)
	}
	created := time.UnixMilli(m.GetCreatedUnixMs()).UTC()
	if err := checkRatingTimes(created, rc.Issued, now); err != nil {
		return RatingRecord{}, fmt.Errorf("open rating: %w", err)
	}
	return RatingRecord{Envelope: b, Rating: Rating{
		Receipt: rc, ReceiptEnvelope: m.GetReceipt(), Rater: rater, Subject: subject,
		Score: float64(m.GetScore()) / 100, Comment: m.GetComment(), Created: created,
	}}, nil
}
