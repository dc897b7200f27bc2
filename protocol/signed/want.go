package signed

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
	mh "github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/proto"

	"github.com/pullnet/pullnet/internal/query"
	wirev1 "github.com/pullnet/pullnet/proto/gen/pullnet/wire/v1"
	"github.com/pullnet/pullnet/resource"
)

// WantDomain is the signature domain of wants.
const WantDomain = "pullnet-want"

var wantCodec = []byte("/pullnet/want")

// Limits on a want.
const (
	// MaxWantDescriptionLen caps a want's description in bytes.
	MaxWantDescriptionLen = 1024
	// MaxWantTTL is the longest a want may live.
	MaxWantTTL = 30 * 24 * time.Hour
	// MaxWantEnvelopeSize caps a signed want: a 4 KiB query, a 1 KiB
	// description, the key and signature.
	MaxWantEnvelopeSize = 8 << 10
	// wantClockSkew is how far in the future a want's creation may lie.
	wantClockSkew = 5 * time.Minute
)

// ErrExpired is returned by OpenWant for a want past its expiry.
var ErrExpired = errors.New("want expired")

// Want is a participant's signed, expiring record of what it is looking for.
type Want struct {
	ID          string
	Owner       peer.ID
	Handle      string
	Query       string // canonical form
	Description string
	Created     time.Time
	Expires     time.Time
}

// WantRecord is a want as its owner signed it.
type WantRecord struct {
	Want     Want
	Envelope []byte
}

// NewWantID derives a want's ID from its owner and handle, in a namespace
// apart from resource IDs.
func NewWantID(owner peer.ID, handle string) string {
	sum := sha256.Sum256([]byte("pullnet/want/v1\x00" + owner.String() + "\x00" + handle))
	h, err := mh.Encode(sum[:], mh.SHA2_256)
	if err != nil {
		panic(err)
	}
	return cid.NewCidV1(cid.Raw, h).String()
}

type wantRecord struct{ msg wirev1.Want }

func (*wantRecord) Domain() string { return WantDomain }
func (*wantRecord) Codec() []byte  { return wantCodec }
func (r *wantRecord) MarshalRecord() ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(&r.msg)
}
func (r *wantRecord) UnmarshalRecord(b []byte) error { return proto.Unmarshal(b, &r.msg) }

// checkWant validates w's fields, with its query parsed; it returns the
// query's canonical form.
func checkWant(w *Want) (string, error) {
	if w.Handle == "" || len(w.Handle) > resource.MaxHandleLen {
		return "", errors.New("bad handle")
	}
	if len(w.Query) > query.MaxLen {
		return "", fmt.Errorf("query is %d bytes, at most %d allowed", len(w.Query), query.MaxLen)
	}
	q, err := query.Parse(w.Query)
	if err != nil {
		return "", fmt.Errorf("query: %v", err)
	}
	if len(q.IndexTerms()) == 0 {
		return "", fmt.Errorf("query: %v", query.ErrNotIndexable)
	}
	if len(w.Description) > MaxWantDescriptionLen || !utf8.ValidString(w.Description) {
		return "", fmt.Errorf("description: at most %d bytes of UTF-8", MaxWantDescriptionLen)
	}
	if w.Created.IsZero() || !w.Expires.After(w.Created) {
		return "", errors.New("expiry must follow creation")
	}
	if w.Expires.Sub(w.Created) > MaxWantTTL {
		return "", fmt.Errorf("lifetime %v exceeds %v", w.Expires.Sub(w.Created), MaxWantTTL)
	}
	return q.String(), nil
}

// SealWant signs w with the owner's key. It fills in Owner and ID, puts the
// query in canonical form and truncates the times to seconds.
func SealWant(key crypto.PrivKey, w Want) (WantRecord, error) {
	owner, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return WantRecord{}, fmt.Errorf("seal want: %w", err)
	}
	w.Owner = owner
	w.Created = time.Unix(w.Created.Unix(), 0).UTC()
	w.Expires = time.Unix(w.Expires.Unix(), 0).UTC()
	canon, err := checkWant(&w)
	if err != nil {
		return WantRecord{}, fmt.Errorf("seal want: %w: %v", ErrMalformed, err)
	}
	w.Query = canon
	w.ID = NewWantID(owner, w.Handle)
	rec := &wantRecord{msg: wirev1.Want{
		Owner:       []byte(owner),
		Handle:      w.Handle,
		Query:       w.Query,
		Description: w.Description,
		CreatedUnix: w.Created.Unix(),
		ExpiresUnix: w.Expires.Unix(),
	}}
	env, err := record.Seal(rec, key)
	if err != nil {
		return WantRecord{}, fmt.Errorf("seal want: %w", err)
	}
	b, err := env.Marshal()
	if err != nil {
		return WantRecord{}, fmt.Errorf("seal want: %w", err)
	}
	if len(b) > MaxWantEnvelopeSize {
		return WantRecord{}, fmt.Errorf("seal want: %w: %d bytes", ErrTooLarge, len(b))
	}
	return WantRecord{Want: w, Envelope: b}, nil
}

// OpenWant verifies a signed want: the signature, that the owner named
// inside signed it, the want's limits, and that it is live at now (created
// no later than a few minutes ahead of now, not yet expired).
func OpenWant(b []byte, now time.Time) (WantRecord, error) {
	if len(b) > MaxWantEnvelopeSize {
		return WantRecord{}, fmt.Errorf("open want: %w: %d bytes", ErrTooLarge, len(b))
	}
	var rec wantRecord
	env, err := record.ConsumeTypedEnvelope(b, &rec)
	if err != nil {
		return WantRecord{}, fmt.Errorf("open want: %w: %v", ErrBadSignature, err)
	}
	if string(env.PayloadType) != string(wantCodec) {
		return WantRecord{}, fmt.Errorf("open want: %w: payload type %q", ErrMalformed, env.PayloadType)
	}
	signer, err := peer.IDFromPublicKey(env.PublicKey)
	if err != nil {
		return WantRecord{}, fmt.Errorf("open want: %w: %v", ErrBadSignature, err)
	}
	m := &rec.msg
	owner, err := peer.IDFromBytes(m.GetOwner())
	if err != nil {
		return WantRecord{}, fmt.Errorf("open want: %w: owner: %v", ErrMalformed, err)
	}
	if owner != signer {
		return WantRecord{}, fmt.Errorf("open want: %w: signed by %s, owner %s", ErrNotOwner, signer, owner)
	}
	w := Want{
		Owner:       owner,
		Handle:      m.GetHandle(),
		Query:       m.GetQuery(),
		Description: m.GetDescription(),
		Created:     time.Unix(m.GetCreatedUnix(), 0).UTC(),
		Expires:     time.Unix(m.GetExpiresUnix(), 0).UTC(),
	}
	canon, err := checkWant(&w)
	if err != nil {
		return WantRecord{}, fmt.Errorf("open want: %w: %v", ErrMalformed, err)
	}
	w.Query = canon
	w.ID = NewWantID(owner, w.Handle)
	if w.Created.After(now.Add(wantClockSkew)) {
		return WantRecord{}, fmt.Errorf("open want: %w: created in the future (%v)", ErrMalformed, w.Created)
	}
	if !now.Before(w.Expires) {
		return WantRecord{}, fmt.Errorf("open want: %w at %v", ErrExpired, w.Expires)
	}
	return WantRecord{Want: w, Envelope: b}, nil
}
