package tunnel

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/libp2p/go-msgio/pbio"
	"google.golang.org/protobuf/proto"

	wirev1 "github.com/pullnet/pullnet/proto/gen/pullnet/wire/v1"
)

func delimited(t testing.TB, m proto.Message) []byte {
	var b bytes.Buffer
	if err := pbio.NewDelimitedWriter(&b).WriteMsg(m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// FuzzReadOpen: the provider decodes whatever a peer opens a tunnel with;
// it fails cleanly or yields a message within the cap.
func FuzzReadOpen(f *testing.F) {
	f.Add(delimited(f, &wirev1.TunnelOpen{Token: []byte("token")}))
	f.Add(binary.AppendUvarint(nil, MaxOpenSize+1))
	f.Add([]byte{0x03, 0x0a, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := readOpen(bytes.NewReader(b))
		if err == nil && proto.Size(m) > MaxOpenSize {
			t.Fatalf("decoded a %d-byte open past the cap", proto.Size(m))
		}
	})
}

// FuzzReadResponse: the consumer decodes whatever a provider answers.
func FuzzReadResponse(f *testing.F) {
	f.Add(delimited(f, &wirev1.TunnelOpenResponse{Ok: true}))
	f.Add(delimited(f, &wirev1.TunnelOpenResponse{Reason: "session revoked"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := readResponse(bytes.NewReader(b))
		if err == nil && proto.Size(m) > MaxResponseSize {
			t.Fatalf("decoded past the cap")
		}
	})
}
