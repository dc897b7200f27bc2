package signed

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
	"google.golang.org/protobuf/proto"

	wirev1 "github.com/pullnet/pullnet/proto/gen/pullnet/wire/v1"
)

// session is a provider, a consumer and the provider's receipt of a
// session between them.
type session struct {
	prov, cons     crypto.PrivKey
	provID, consID peer.ID
	receipt        []byte
	issued         time.Time
}

func newSession(t testing.TB, issued time.Time) session {
	t.Helper()
	s := session{prov: newKey(t), cons: newKey(t), issued: issued}
	s.provID, _ = peer.IDFromPrivateKey(s.prov)
	s.consID, _ = peer.IDFromPrivateKey(s.cons)
	var err error
	s.receipt, err = SealReceipt(s.prov, Receipt{Session: "s1", ResourceID: "r1", Provider: s.provID, Consumer: s.consID, Issued: issued, Expires: issued.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sealRaw signs any Rating message, skipping SealRating's checks, as a
// forger would.
func sealRaw(t testing.TB, key crypto.PrivKey, m *wirev1.Rating) []byte {
	t.Helper()
	rec := &ratingRecord{}
	proto.Merge(&rec.msg, m)
	env, err := record.Seal(rec, key)
	if err != nil {
		t.Fatal(err)
	}
	b, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRatingRoundTrip(t *testing.T) {
	now := time.Now()
	s := newSession(t, now.Add(-time.Hour))
	// The consumer rates the provider.
	r, err := SealRating(s.cons, s.receipt, -0.5, "slow", now)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenRating(r.Envelope, now)
	if err != nil {
		t.Fatal(err)
	}
	if got.Rating.Rater != s.consID || got.Rating.Subject != s.provID || got.Rating.Score != -0.5 || got.Rating.Comment != "slow" || !got.Rating.Created.Equal(r.Rating.Created) {
		t.Fatalf("opened %+v", got.Rating)
	}
	// The provider rates the consumer; the key tells the two apart.
	r2, err := SealRating(s.prov, s.receipt, 1, "", now)
	if err != nil {
		t.Fatal(err)
	}
	got2, err := OpenRating(r2.Envelope, now)
	if err != nil {
		t.Fatal(err)
	}
	if got2.Rating.Subject != s.consID || got2.Rating.Key() == got.Rating.Key() {
		t.Fatalf("provider's rating: subject %s, key %s", got2.Rating.Subject, got2.Rating.Key())
	}
}

func TestRatingRejected(t *testing.T) {
	now := time.Now()
	s := newSession(t, now.Add(-time.Hour))
	stranger := newKey(t)
	strangerID, _ := peer.IDFromPrivateKey(stranger)
	// A receipt "from" the provider, signed by the consumer.
	forgedReceipt, err := record.Seal(&receiptRecord{msg: wirev1.Receipt{SessionId: "s2", ResourceId: "r1", Provider: []byte(s.provID), Consumer: []byte(s.consID), IssuedUnix: now.Unix()}}, s.cons)
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := forgedReceipt.Marshal()
	self, _ := SealReceipt(s.prov, Receipt{Session: "s3", ResourceID: "r1", Provider: s.provID, Consumer: s.provID, Issued: now})
	ms := now.UnixMilli()
	msg := func(mod func(*wirev1.Rating)) *wirev1.Rating {
		m := &wirev1.Rating{Receipt: s.receipt, Rater: []byte(s.consID), Score: -100, CreatedUnixMs: ms}
		mod(m)
		return m
	}
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"garbage", []byte("not an envelope"), ErrBadSignature},
		{"oversized", make([]byte, MaxRatingEnvelopeSize+1), ErrTooLarge},
		{"forged receipt", sealRaw(t, s.cons, msg(func(m *wirev1.Rating) { m.Receipt = forged })), ErrNotOwner},
		{"receipt garbage", sealRaw(t, s.cons, msg(func(m *wirev1.Rating) { m.Receipt = []byte{1, 2, 3} })), ErrBadSignature},
		{"rater not a party", sealRaw(t, stranger, msg(func(m *wirev1.Rating) { m.Rater = []byte(strangerID) })), ErrNotParty},
		{"signer is not the rater", sealRaw(t, stranger, msg(func(*wirev1.Rating) {})), ErrNotOwner},
		{"self session", sealRaw(t, s.prov, msg(func(m *wirev1.Rating) { m.Receipt = self; m.Rater = []byte(s.provID) })), ErrNotParty},
		{"score too high", sealRaw(t, s.cons, msg(func(m *wirev1.Rating) { m.Score = 101 })), ErrMalformed},
		{"comment too long", sealRaw(t, s.cons, msg(func(m *wirev1.Rating) { m.Comment = strings.Repeat("x", MaxRatingCommentLen+1) })), ErrMalformed},
		{"future", sealRaw(t, s.cons, msg(func(m *wirev1.Rating) { m.CreatedUnixMs = now.Add(time.Hour).UnixMilli() })), ErrBadTime},
		{"ancient", sealRaw(t, s.cons, msg(func(m *wirev1.Rating) { m.CreatedUnixMs = now.Add(-MaxRatingAge - time.Hour).UnixMilli() })), ErrBadTime},
		{"before the session", sealRaw(t, s.cons, msg(func(m *wirev1.Rating) { m.CreatedUnixMs = s.issued.Add(-time.Hour).UnixMilli() })), ErrBadTime},
		{"a receipt is not a rating", s.receipt, ErrBadSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OpenRating(tc.b, now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// The honest form of the same message opens.
	if _, err := OpenRating(sealRaw(t, s.cons, msg(func(*wirev1.Rating) {})), now); err != nil {
		t.Fatalf("honest rating: %v", err)
	}
}

func TestSealRatingChecks(t *testing.T) {
	now := time.Now()
	s := newSession(t, now.Add(-time.Hour))
	if _, err := SealRating(newKey(t), s.receipt, 1, "", now); !errors.Is(err, ErrNotParty) {
		t.Fatalf("stranger sealed a rating: %v", err)
	}
	if _, err := SealRating(s.cons, s.receipt, 1.5, "", now); !errors.Is(err, ErrMalformed) {
		t.Fatalf("score 1.5: %v", err)
	}
	if _, err := SealRating(s.cons, s.receipt, 1, strings.Repeat("é", MaxRatingCommentLen), now); !errors.Is(err, ErrMalformed) {
		t.Fatalf("long comment: %v", err)
	}
	if _, err := SealRating(s.cons, []byte("x"), 1, "", now); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("garbage receipt: %v", err)
	}
}

func FuzzOpenRating(f *testing.F) {
	now := time.Unix(1800000000, 0)
	s := newSession(f, now.Add(-time.Hour))
	r, err := SealRating(s.cons, s.receipt, 0.75, "fine", now)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(r.Envelope)
	f.Add(s.receipt)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := OpenRating(b, now)
		if err != nil {
			return
		}
		// Whatever opens names a party of its session as rater, the other as
		// subject, and re-opens to the same rating.
		rt := got.Rating
		if rt.Rater == rt.Subject || (rt.Rater != rt.Receipt.Consumer && rt.Rater != rt.Receipt.Provider) {
			t.Fatalf("opened a rating by a non-party: %+v", rt)
		}
		again, err := OpenRating(got.Envelope, now)
		if err != nil || again.Rating.Key() != rt.Key() || again.Rating.Score != rt.Score {
			t.Fatalf("re-open: %v", err)
		}
	})
}
