package connect

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

func TestWireCaps(t *testing.T) {
	if _, err := readRequest(bytes.NewReader(delimited(t, &wirev1.ConnectRequest{ResourceId: "x", Message: string(make([]byte, MaxRequestSize))}))); err == nil {
		t.Fatal("oversized request accepted")
	}
	if _, err := readResponse(bytes.NewReader(delimited(t, &wirev1.ConnectResponse{Receipt: make([]byte, MaxResponseSize)}))); err == nil {
		t.Fatal("oversized response accepted")
	}
	resp := Response{Granted: true, Session: "s", Receipt: []byte("r")}
	resp.Access.Type, resp.Access.Value = "url", "https://example.org"
	m, err := readResponse(bytes.NewReader(delimited(t, responseToWire(resp))))
	if err != nil {
		t.Fatal(err)
	}
	if got := responseFromWire(m); got.Session != "s" || got.Access != resp.Access || !got.Granted {
		t.Fatalf("round trip: %+v", got)
	}
}

func FuzzReadRequest(f *testing.F) {
	f.Add(delimited(f, &wirev1.ConnectRequest{ResourceId: "bafkrei", Message: "hello"}))
	f.Add(binary.AppendUvarint(nil, 1<<40))
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := readRequest(bytes.NewReader(b)); err == nil && proto.Size(m) > MaxRequestSize {
			t.Fatalf("decoded past the cap")
		}
	})
}

// FuzzReadResponse: the consumer decodes whatever a provider answers; a
// decoded grant converts and re-encodes to the same message.
func FuzzReadResponse(f *testing.F) {
	f.Add(delimited(f, &wirev1.ConnectResponse{Granted: true, SessionId: "s", Access: &wirev1.Access{Type: "tcp"}, Receipt: []byte{1, 2}}))
	f.Add(delimited(f, &wirev1.ConnectResponse{Reason: "no"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := readResponse(bytes.NewReader(b))
		if err != nil {
			return
		}
		again := responseToWire(responseFromWire(m))
		if again.GetGranted() != m.GetGranted() || again.GetSessionId() != m.GetSessionId() || again.GetReason() != m.GetReason() {
			t.Fatalf("response changed in conversion: %v → %v", m, again)
		}
	})
}
