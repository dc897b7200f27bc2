package resourcepb

import (
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pullnet/pullnet/resource"
)

func TestRoundTrip(t *testing.T) {
	full := resource.Resource{
		ID:          resource.NewID("12D3KooWowner", "gpu"),
		Owner:       "12D3KooWowner",
		Handle:      "gpu",
		Kind:        resource.KindCompute,
		Name:        "A100 box",
		Description: "two GPUs",
		Tags:        []string{"cuda", "gpu"},
		Attrs:       map[string]string{"gpu.count": "2"},
		Access:      resource.Access{Type: resource.AccessTCP, Value: "127.0.0.1:8080"},
		DerivedFrom: []string{resource.NewID("12D3KooWother", "base")},
		Seq:         7,
		Expires:     time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		Updated:     time.Date(2029, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	for name, r := range map[string]resource.Resource{
		"full":    full,
		"minimal": {Kind: "skill", Name: "go reviews"},
	} {
		t.Run(name, func(t *testing.T) {
			// Marshal through the wire so the test also covers what the
			// decoder makes of empty fields.
			b, err := proto.Marshal(ToProto(r))
			if err != nil {
				t.Fatal(err)
			}
			m := ToProto(resource.Resource{})
			if err := proto.Unmarshal(b, m); err != nil {
				t.Fatal(err)
			}
			if got := FromProto(m); !reflect.DeepEqual(got, r) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, r)
			}
		})
	}
}

func TestZeroTimesStayZero(t *testing.T) {
	m := ToProto(resource.Resource{Kind: "x", Name: "y"})
	if m.GetExpiresUnix() != 0 || m.GetUpdatedUnix() != 0 {
		t.Errorf("zero times sent as %d, %d; want 0, 0", m.GetExpiresUnix(), m.GetUpdatedUnix())
	}
	if m.GetAccess() != nil {
		t.Errorf("empty access sent as %v; want nil", m.GetAccess())
	}
	if got := FromProto(nil); !reflect.DeepEqual(got, resource.Resource{}) {
		t.Errorf("FromProto(nil) = %+v; want the zero resource", got)
	}
}
