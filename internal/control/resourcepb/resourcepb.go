// Package resourcepb converts resource.Resource to and from the control API's
// protobuf message.
//
// Both ends of the control API need the same conversion: the server in
// internal/control and the Go client in peerctl/client. Keeping it in one
// package means a field added to the resource model is added to the control
// API in one place. The package imports only the resource model and the
// generated messages, so the client stays free of libp2p.
package resourcepb

import (
	"time"

	controlv1 "github.com/pullnet/pullnet/proto/gen/pullnet/control/v1"
	"github.com/pullnet/pullnet/resource"
)

// ToProto converts r to its control API message.
func ToProto(r resource.Resource) *controlv1.Resource {
	return &controlv1.Resource{
		Id:          r.ID,
		Owner:       r.Owner,
		Handle:      r.Handle,
		Kind:        r.Kind,
		Name:        r.Name,
		Description: r.Description,
		Tags:        r.Tags,
		Attrs:       r.Attrs,
		Access:      AccessToProto(r.Access),
		DerivedFrom: r.DerivedFrom,
		Seq:         r.Seq,
		Withdrawn:   r.Withdrawn,
		ExpiresUnix: unixOrZero(r.Expires),
		UpdatedUnix: unixOrZero(r.Updated),
	}
}

// FromProto converts a control API message to a resource. A nil message is
// the zero resource.
func FromProto(m *controlv1.Resource) resource.Resource {
	if m == nil {
		return resource.Resource{}
	}
	r := resource.Resource{
		ID:          m.GetId(),
		Owner:       m.GetOwner(),
		Handle:      m.GetHandle(),
		Kind:        m.GetKind(),
		Name:        m.GetName(),
		Description: m.GetDescription(),
		Tags:        m.GetTags(),
		Attrs:       m.GetAttrs(),
		Access:      AccessFromProto(m.GetAccess()),
		DerivedFrom: m.GetDerivedFrom(),
		Seq:         m.GetSeq(),
		Withdrawn:   m.GetWithdrawn(),
		Expires:     timeOrZero(m.GetExpiresUnix()),
		Updated:     timeOrZero(m.GetUpdatedUnix()),
	}
	if len(r.Attrs) == 0 {
		// An empty map decodes as an empty, non-nil map; the resource model
		// uses nil for "no attributes".
		r.Attrs = nil
	}
	return r
}

// AccessToProto converts a to its control API message, nil when a is empty.
func AccessToProto(a resource.Access) *controlv1.Access {
	if a == (resource.Access{}) {
		return nil
	}
	return &controlv1.Access{Type: a.Type, Value: a.Value}
}

// AccessFromProto converts a control API message to an Access.
func AccessFromProto(m *controlv1.Access) resource.Access {
	return resource.Access{Type: m.GetType(), Value: m.GetValue()}
}

// The wire carries whole seconds, with 0 for "not set": the zero time.Time
// is far from the Unix epoch, so it must not go through Unix().
func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func timeOrZero(sec int64) time.Time {
	if sec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
}
