// Package streams holds what every pullnet stream protocol does the same way:
// attaching a stream to its resource-manager service with a memory
// reservation and a deadline, tying a client stream to its context, and
// reading size-capped messages.
package streams

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"google.golang.org/protobuf/proto"
)

// Accept prepares an inbound stream: it attaches the stream to the named
// resource-manager service, reserves mem bytes for the handler's buffers and
// sets the stream's deadline. On error the stream has been reset. The
// returned release must be called when the handler ends.
func Accept(s network.Stream, service string, mem int, deadline time.Duration) (release func(), err error) {
	if err := s.Scope().SetService(service); err != nil {
		s.Reset()
		return nil, fmt.Errorf("attach stream to %s: %w", service, err)
	}
	if err := s.Scope().ReserveMemory(mem, network.ReservationPriorityAlways); err != nil {
		s.Reset()
		return nil, fmt.Errorf("reserve memory for %s: %w", service, err)
	}
	_ = s.SetDeadline(time.Now().Add(deadline))
	return func() { s.Scope().ReleaseMemory(mem) }, nil
}

// Bind ties an outbound stream to ctx: the stream's deadline becomes ctx's
// deadline (capped at max), and cancelling ctx resets the stream so a
// blocked read returns at once. The returned stop must be called when the
// caller is done with the stream.
func Bind(ctx context.Context, s network.Stream, max time.Duration) (stop func() bool) {
	deadline := time.Now().Add(max)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = s.SetDeadline(deadline)
	return context.AfterFunc(ctx, func() { s.Reset() })
}

// ReadMsg decodes one length-delimited protobuf message of at most max
// bytes from r: the one way every pullnet protocol reads outside bytes.
//
// It reads exactly the message and nothing past it. A buffered reader would
// be wrong here: on a tunnel, the bytes after the provider's answer are the
// service's own, and would be lost with the buffer.
func ReadMsg[T any, PT interface {
	*T
	proto.Message
}](r io.Reader, max int) (*T, error) {
	size, err := binary.ReadUvarint(byteReader{r})
	if err != nil {
		return nil, err
	}
	if size > uint64(max) {
		return nil, fmt.Errorf("message of %d bytes exceeds the %d-byte cap", size, max)
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	m := PT(new(T))
	if err := proto.Unmarshal(buf, m); err != nil {
		return nil, err
	}
	return (*T)(m), nil
}

// byteReader reads a varint one byte at a time, so not a byte more.
type byteReader struct{ r io.Reader }

func (b byteReader) ReadByte() (byte, error) {
	var one [1]byte
	if _, err := io.ReadFull(b.r, one[:]); err != nil {
		return 0, err
	}
	return one[0], nil
}
