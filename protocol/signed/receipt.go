package signed

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
	"google.golang.org/protobuf/proto"

	wirev1 "github.com/pullnet/pullnet/proto/gen/pullnet/wire/v1"
)

// Receipt is a provider's signed statement that it granted a consumer a
// session on one of its resources. One receipt backs one rating.
type Receipt struct {
	Session    string
	ResourceID string
	Provider   peer.ID
	Consumer   peer.ID
	Issued     time.Time
	Expires    time.Time
}

type receiptRecord struct{ msg wirev1.Receipt }

func (*receiptRecord) Domain() string { return ReceiptDomain }
func (*receiptRecord) Codec() []byte  { return receiptCodec }
func (r *receiptRecord) MarshalRecord() ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(&r.msg)
}
func (r *receiptRecord) UnmarshalRecord(b []byte) error { return proto.Unmarshal(b, &r.msg) }

// SealReceipt signs rc with the provider's key; rc.Provider must be that key's
// peer ID.
func SealReceipt(key crypto.PrivKey, rc Receipt) ([]byte, error) {
	signer, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("seal receipt: %w", err)
	}
	if rc.Provider != signer {
		return nil, fmt.Errorf("seal receipt: %w: provider %s is not the signer %s", ErrNotOwner, rc.Provider, signer)
	}
	rec := &receiptRecord{msg: wirev1.Receipt{
		SessionId:   rc.Session,
		ResourceId:  rc.ResourceID,
		Provider:    []byte(rc.Provider),
		Consumer:    []byte(rc.Consumer),
		IssuedUnix:  rc.Issued.Unix(),
		ExpiresUnix: unixOrZero(rc.Expires),
	}}
	env, err := record.Seal(rec, key)
	if err != nil {
		return nil, fmt.Errorf("seal receipt: %w", err)
	}
	return env.Marshal()
}

// OpenReceipt verifies a receipt's signature and that the provider named
// inside signed it.
func OpenReceipt(b []byte) (Receipt, error) {
	if len(b) > MaxEnvelopeSize {
		return Receipt{}, fmt.Errorf("open receipt: %w: %d bytes", ErrTooLarge, len(b))
	}
	var rec receiptRecord
	env, err := record.ConsumeTypedEnvelope(b, &rec)
	if err != nil {
		return Receipt{}, fmt.Errorf("open receipt: %w: %v", ErrBadSignature, err)
	}
	if string(env.PayloadType) != string(receiptCodec) {
		return Receipt{}, fmt.Errorf("open receipt: %w: payload type %q", ErrMalformed, env.PayloadType)
	}
	signer, err := peer.IDFromPublicKey(env.PublicKey)
	if err != nil {
		return Receipt{}, fmt.Errorf("open receipt: %w: %v", ErrBadSignature, err)
	}
	m := &rec.msg
	provider, err := peer.IDFromBytes(m.GetProvider())
	if err != nil {
		return Receipt{}, fmt.Errorf("open receipt: %w: provider: %v", ErrMalformed, err)
	}
	consumer, err := peer.IDFromBytes(m.GetConsumer())
	if err != nil {
		return Receipt{}, fmt.Errorf("open receipt: %w: consumer: %v", ErrMalformed, err)
	}
	if provider != signer {
		return Receipt{}, fmt.Errorf("open receipt: %w: signed by %s, provider %s", ErrNotOwner, signer, provider)
	}
	rc := Receipt{
		Session:    m.GetSessionId(),
		ResourceID: m.GetResourceId(),
		Provider:   provider,
		Consumer:   consumer,
		Issued:     time.Unix(m.GetIssuedUnix(), 0).UTC(),
	}
	if m.GetExpiresUnix() != 0 {
		rc.Expires = time.Unix(m.GetExpiresUnix(), 0).UTC()
	}
	return rc, nil
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
