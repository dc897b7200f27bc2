// Package find implements /pullnet/find/1.0.0: a finder sends a query to a
// provider, which evaluates the whole query against its own catalog and
// answers with the signed resources that match, best first.
package find

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio/pbio"

	"github.com/pullnet/pullnet/internal/query"
	wirev1 "github.com/pullnet/pullnet/proto/gen/pullnet/wire/v1"
	"github.com/pullnet/pullnet/protocol/signed"
	"github.com/pullnet/pullnet/protocol/streams"
)

// ID is the protocol ID of find.
const ID protocol.ID = "/pullnet/find/1.0.0"

// ServiceName is the resource-manager service of find's streams.
const ServiceName = "pullnet.find"

const (
	// MaxRequestSize caps a FindRequest: a query is at most 4 KiB.
	MaxRequestSize = 8 << 10
	// MaxResponseSize caps one FindResponse: one signed resource.
	MaxResponseSize = signed.MaxEnvelopeSize + 1<<10
	// MaxResults caps the matches one request is answered with.
	MaxResults = 100
	// StreamTimeout bounds a whole find exchange on either side.
	StreamTimeout = 20 * time.Second
)

// Catalog answers a query with its matching signed envelopes, best first.
type Catalog interface {
	Match(q *query.Query, limit int) [][]byte
}

// Stats counts what the service has seen. Read with its Load methods.
type Stats struct {
	Served    atomic.Int64 // requests answered
	Results   atomic.Int64 // envelopes sent
	Malformed atomic.Int64 // requests dropped: unreadable, oversized or garbled
	BadQuery  atomic.Int64 // requests whose query did not parse
}

// Service answers find requests from its catalog.
type Service struct {
	host    host.Host
	catalog Catalog
	log     *slog.Logger
	Stats   Stats
}

// NewService registers the find handler on h.
func NewService(h host.Host, c Catalog, logger *slog.Logger) *Service {
	s := &Service{host: h, catalog: c, log: logger}
	h.SetStreamHandler(ID, s.handle)
	return s
}

// Close removes the handler.
func (s *Service) Close() { s.host.RemoveStreamHandler(ID) }

func (s *Service) handle(str network.Stream) {
	release, err := streams.Accept(str, ServiceName, MaxRequestSize+MaxResponseSize, StreamTimeout)
	if err != nil {
		s.log.Debug("find: refused stream", "peer", str.Conn().RemotePeer(), "err", err)
		return
	}
	defer release()

	req, err := readRequest(str)
	if err != nil {
		s.Stats.Malformed.Add(1)
		s.log.Info("find: dropped malformed request", "peer", str.Conn().RemotePeer(), "err", err)
		str.Reset()
		return
	}
	w := pbio.NewDelimitedWriter(str)
	q, err := query.Parse(req.GetQuery())
	if err != nil {
		s.Stats.BadQuery.Add(1)
		_ = w.WriteMsg(&wirev1.FindResponse{Error: err.Error()})
		_ = str.Close()
		return
	}
	limit := int(req.GetLimit())
	if limit <= 0 || limit > MaxResults {
		limit = MaxResults
	}
	s.Stats.Served.Add(1)
	for _, env := range s.catalog.Match(q, limit) {
		if err := w.WriteMsg(&wirev1.FindResponse{Envelope: env}); err != nil {
			s.log.Debug("find: write", "peer", str.Conn().RemotePeer(), "err", err)
			str.Reset()
			return
		}
		s.Stats.Results.Add(1)
	}
	_ = str.Close()
}

// readRequest decodes one length-delimited FindRequest of at most
// MaxRequestSize bytes.
func readRequest(r io.Reader) (*wirev1.FindRequest, error) {
	return streams.ReadMsg[wirev1.FindRequest](r, MaxRequestSize)
}

// ErrRemote is wrapped by errors that the remote provider reported.
var ErrRemote = errors.New("provider refused the query")

// Ask sends query to peer p and calls fn with each signed envelope p answers
// with, until p is done, fn returns false, or ctx ends. Envelopes are not
// verified here: that is the caller's job.
func Ask(ctx context.Context, h host.Host, p peer.ID, q string, limit int, fn func(envelope []byte) bool) error {
	// A request and its answer are small: they may cross a relayed
	// connection, whose limits are sized for exactly such exchanges.
	str, err := h.NewStream(network.WithAllowLimitedConn(ctx, "pullnet-find"), p, ID)
	if err != nil {
		return fmt.Errorf("find: open stream to %s: %w", p, err)
	}
	stop := streams.Bind(ctx, str, StreamTimeout)
	defer stop()
	if err := str.Scope().SetService(ServiceName); err != nil {
		str.Reset()
		return fmt.Errorf("find: %w", err)
	}
	if err := pbio.NewDelimitedWriter(str).WriteMsg(&wirev1.FindRequest{Query: q, Limit: uint32(limit)}); err != nil {
		str.Reset()
		return fmt.Errorf("find: send to %s: %w", p, err)
	}
	_ = str.CloseWrite()
	r := pbio.NewDelimitedReader(str, MaxResponseSize)
	for {
		var resp wirev1.FindResponse
		if err := r.ReadMsg(&resp); err != nil {
			if errors.Is(err, io.EOF) {
				_ = str.Close()
				return nil
			}
			str.Reset()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("find: read from %s: %w", p, err)
		}
		if e := resp.GetError(); e != "" {
			_ = str.Close()
			return fmt.Errorf("%w: %s", ErrRemote, e)
		}
		if !fn(resp.GetEnvelope()) {
			str.Reset()
			return nil
		}
	}
}
