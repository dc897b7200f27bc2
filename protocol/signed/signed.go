// Package signed seals pullnet's records in libp2p signed envelopes and opens
// them again, verifying the signature and that the signer is entitled to the
// record: the owner of a resource, the provider of a receipt.
//
// It is also where the wire form of a resource (a protobuf message) is
// converted to and from the plain resource.Resource, so generated types stay
// inside protocol/.
package signed

import (
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
	"google.golang.org/protobuf/proto"

	wirev1 "github.com/pullnet/pullnet/proto/gen/pullnet/wire/v1"
	"github.com/pullnet/pullnet/resource"
)

// Signature domains and payload types. The domain separates pullnet's
// signatures from every other use of the same key.
const (
	ResourceDomain = "pullnet-resource"
	ReceiptDomain  = "pullnet-receipt"
)

var (
	resourceCodec = []byte("/pullnet/resource")
	receiptCodec  = []byte("/pullnet/receipt")
)

// MaxEnvelopeSize caps a signed resource or receipt. A resource within the
// resource package's field limits stays well below it.
const MaxEnvelopeSize = 32 << 10

// Errors of Open*; wrapped with detail.
var (
	ErrTooLarge     = errors.New("envelope too large")
	ErrBadSignature = errors.New("bad signature")
	ErrNotOwner     = errors.New("signer does not own the record")
	ErrMalformed    = errors.New("malformed record")
)

// Record is a resource as its owner signed it.
type Record struct {
	Resource resource.Resource
	Owner    peer.ID
	// Envelope is the signed envelope, ready to send as it is.
	Envelope []byte
}

// resourceRecord adapts the wire message to libp2p's record.Record.
type resourceRecord struct{ msg wirev1.Resource }

func (*resourceRecord) Domain() string { return ResourceDomain }
func (*resourceRecord) Codec() []byte  { return resourceCodec }
func (r *resourceRecord) MarshalRecord() ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(&r.msg)
}
func (r *resourceRecord) UnmarshalRecord(b []byte) error { return proto.Unmarshal(b, &r.msg) }

// SealResource signs r with the owner's key. It fills in r's Owner and ID
// (from the key and r.Handle), normalizes and validates r, and returns the
// record with its envelope.
func SealResource(key crypto.PrivKey, r resource.Resource) (Record, error) {
	owner, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return Record{}, fmt.Errorf("seal resource: %w", err)
	}
	if r.Handle == "" {
		return Record{}, fmt.Errorf("seal resource: %w: empty handle", ErrMalformed)
	}
	r.Normalize()
	r.Owner = owner.String()
	r.ID = resource.NewID(r.Owner, r.Handle)
	if err := r.Validate(); err != nil {
		return Record{}, fmt.Errorf("seal resource: %w", err)
	}
	rec := &resourceRecord{msg: *ResourceToWire(&r, owner)}
	env, err := record.Seal(rec, key)
	if err != nil {
		return Record{}, fmt.Errorf("seal resource: %w", err)
	}
	b, err := env.Marshal()
	if err != nil {
		return Record{}, fmt.Errorf("seal resource: %w", err)
	}
	if len(b) > MaxEnvelopeSize {
		return Record{}, fmt.Errorf("seal resource: %w: %d bytes, at most %d", ErrTooLarge, len(b), MaxEnvelopeSize)
	}
	return Record{Resource: r, Owner: owner, Envelope: b}, nil
}

// OpenResource verifies a signed resource: the envelope's signature, that the
// signer is the owner named inside, that the ID derives from that owner and
// the handle, and that the resource is within the model's limits. It does
// not check expiry: callers decide against their own clock.
func OpenResource(b []byte) (Record, error) {
	if len(b) > MaxEnvelopeSize {
		return Record{}, fmt.Errorf("open resource: %w: %d bytes", ErrTooLarge, len(b))
	}
	var rec resourceRecord
	env, err := record.ConsumeTypedEnvelope(b, &rec)
	if err != nil {
		return Record{}, fmt.Errorf("open resource: %w: %v", ErrBadSignature, err)
	}
	if env.PayloadType == nil || string(env.PayloadType) != string(resourceCodec) {
		return Record{}, fmt.Errorf("open resource: %w: payload type %q", ErrMalformed, env.PayloadType)
	}
	signer, err := peer.IDFromPublicKey(env.PublicKey)
	if err != nil {
		return Record{}, fmt.Errorf("open resource: %w: %v", ErrBadSignature, err)
	}
	owner, err := peer.IDFromBytes(rec.msg.GetOwner())
	if err != nil {
		return Record{}, fmt.Errorf("open resource: %w: owner: %v", ErrMalformed, err)
	}
	if owner != signer {
		return Record{}, fmt.Errorf("open resource: %w: signed by %s, owner %s", ErrNotOwner, signer, owner)
	}
	r := ResourceFromWire(&rec.msg)
	r.Owner = owner.String()
	if r.Handle == "" || len(r.Handle) > resource.MaxHandleLen {
		return Record{}, fmt.Errorf("open resource: %w: bad handle", ErrMalformed)
	}
	r.ID = resource.NewID(r.Owner, r.Handle)
	if err := r.Validate(); err != nil {
		return Record{}, fmt.Errorf("open resource: %w: %v", ErrMalformed, err)
	}
	return Record{Resource: r, Owner: owner, Envelope: b}, nil
}

// ResourceToWire converts r to its wire message. The ID is not sent: the
// receiver derives it from owner and handle.
func ResourceToWire(r *resource.Resource, owner peer.ID) *wirev1.Resource {
	m := &wirev1.Resource{
		Handle:      r.Handle,
		Owner:       []byte(owner),
		Kind:        r.Kind,
		Name:        r.Name,
		Description: r.Description,
		Tags:        r.Tags,
		Attrs:       r.Attrs,
		DerivedFrom: r.DerivedFrom,
		Seq:         r.Seq,
		Withdrawn:   r.Withdrawn,
	}
	if r.Access.Type != "" {
		m.Access = &wirev1.Access{Type: r.Access.Type, Value: r.Access.Value}
	}
	if !r.Expires.IsZero() {
		m.ExpiresUnix = r.Expires.Unix()
	}
	if !r.Updated.IsZero() {
		m.UpdatedUnix = r.Updated.Unix()
	}
	return m
}

// ResourceFromWire converts a wire message to a resource. Owner and ID are
// left for the caller, who knows whether the owner was verified.
func ResourceFromWire(m *wirev1.Resource) resource.Resource {
	r := resource.Resource{
		Handle:      m.GetHandle(),
		Kind:        m.GetKind(),
		Name:        m.GetName(),
		Description: m.GetDescription(),
		Tags:        m.GetTags(),
		Attrs:       m.GetAttrs(),
		DerivedFrom: m.GetDerivedFrom(),
		Seq:         m.GetSeq(),
		Withdrawn:   m.GetWithdrawn(),
	}
	if a := m.GetAccess(); a != nil {
		r.Access = resource.Access{Type: a.GetType(), Value: a.GetValue()}
	}
	if m.GetExpiresUnix() != 0 {
		r.Expires = time.Unix(m.GetExpiresUnix(), 0).UTC()
	}
	if m.GetUpdatedUnix() != 0 {
		r.Updated = time.Unix(m.GetUpdatedUnix(), 0).UTC()
	}
	if len(r.Attrs) == 0 {
		r.Attrs = nil
	}
	return r
}
