package streams

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"

	"github.com/libp2p/go-msgio/pbio"

	wirev1 "github.com/pullnet/pullnet/proto/gen/pullnet/wire/v1"
)

// ReadMsg must leave whatever follows the message unread: on a tunnel it
// is the service's first bytes.
func TestReadMsgReadsNothingPastTheMessage(t *testing.T) {
	var b bytes.Buffer
	if err := pbio.NewDelimitedWriter(&b).WriteMsg(&wirev1.TunnelOpenResponse{Ok: true}); err != nil {
		t.Fatal(err)
	}
	b.WriteString("220 service greeting\r\n")
	m, err := ReadMsg[wirev1.TunnelOpenResponse](&b, 1024)
	if err != nil || !m.GetOk() {
		t.Fatalf("ReadMsg = %v, %v", m, err)
	}
	rest, _ := io.ReadAll(&b)
	if string(rest) != "220 service greeting\r\n" {
		t.Fatalf("bytes after the message: %q", rest)
	}
}

func TestReadMsgCaps(t *testing.T) {
	if _, err := ReadMsg[wirev1.TunnelOpenResponse](bytes.NewReader(binary.AppendUvarint(nil, 1<<20)), 1024); err == nil {
		t.Fatal("oversized length accepted")
	}
	if _, err := ReadMsg[wirev1.TunnelOpenResponse](bytes.NewReader(append(binary.AppendUvarint(nil, 10), 1, 2)), 1024); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated message: %v", err)
	}
	if _, err := ReadMsg[wirev1.TunnelOpenResponse](bytes.NewReader(nil), 1024); err != io.EOF {
		t.Fatalf("empty stream: %v", err)
	}
}
