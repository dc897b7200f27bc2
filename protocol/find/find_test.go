package find

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

func TestReadRequestCaps(t *testing.T) {
	ok := delimited(t, &wirev1.FindRequest{Query: "kind:compute", Limit: 5})
	if req, err := readRequest(bytes.NewReader(ok)); err != nil || req.GetQuery() != "kind:compute" {
		t.Fatalf("good request: %v %v", req, err)
	}
	big := delimited(t, &wirev1.FindRequest{Query: string(make([]byte, MaxRequestSize))})
	if _, err := readRequest(bytes.NewReader(big)); err == nil {
		t.Fatal("oversized request accepted")
	}
	if _, err := readRequest(bytes.NewReader(binary.AppendUvarint(nil, 10))); err == nil {
		t.Fatal("truncated request accepted")
	}
}

// FuzzReadRequest: whatever bytes a peer sends, decoding fails cleanly or
// yields a request that re-encodes within the cap.
func FuzzReadRequest(f *testing.F) {
	f.Add(delimited(f, &wirev1.FindRequest{Query: `kind:compute tag:gpu "stable diffusion"`, Limit: 10}))
	f.Add([]byte{0x05, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add(binary.AppendUvarint(nil, 1<<40))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := readRequest(bytes.NewReader(b))
		if err != nil {
			return
		}
		if n := proto.Size(req); n > MaxRequestSize {
			t.Fatalf("decoded a %d-byte request past the %d cap", n, MaxRequestSize)
		}
	})
}
