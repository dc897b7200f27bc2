// Package wants implements /pullnet/wants/1.0.0: a peer asks another for
// its open wants whose query shares an index term with the asker's list,
// and the other answers with its own signed wants. The asker keeps only
// wants that verify, are live, are served by the peer that signed them (a
// want relayed by anyone else is a replay), and no more than MaxWantsPerPeer
// from one peer.
package wants

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

// ID is the protocol ID of wants.
const ID protocol.ID = "/pullnet/wants/1.0.0"

// ServiceName is the resource-manager service of the protocol's streams.
const ServiceName = "pullnet.wants"

const (
	// MaxTerms caps the terms of one request.
	MaxTerms = 128
	// MaxTermLen caps one term of a request.
	MaxTermLen = 512
	// MaxRequestSize caps a WantsRequest.
	MaxRequestSize = 16 << 10
	// MaxResponseSize caps one WantsResponse: one signed want.
	MaxResponseSize = signed.MaxWantEnvelopeSize + 1<<10
	// MaxResults caps the wants one request is answered with, and read.
	MaxResults = 100
	// MaxWantsPerPeer caps the wants kept from one peer: a node holds at
	// most this many wants of its own.
	MaxWantsPerPeer = 64
	// StreamTimeout bounds a whole exchange on either side.
	StreamTimeout = 20 * time.Second
)

// Source answers with the node's own live signed wants that have one of
// terms among their index terms (all of them when terms is empty), at most
// limit.
type Source interface {
	OwnWants(terms []string, limit int) [][]byte
}

// ServerStats counts what the service has seen.
type ServerStats struct {
	Served    atomic.Int64 // requests answered
	Results   atomic.Int64 // envelopes sent
	Malformed atomic.Int64 // requests dropped: unreadable, oversized, too many or too long terms
}

// Service answers wants requests from its source.
type Service struct {
	host  host.Host
	src   Source
	log   *slog.Logger
	Stats ServerStats
}

// NewService registers the wants handler on h.
func NewService(h host.Host, src Source, logger *slog.Logger) *Service {
	s := &Service{host: h, src: src, log: logger}
	h.SetStreamHandler(ID, s.handle)
	return s
}

// Close removes the handler.
func (s *Service) Close() { s.host.RemoveStreamHandler(ID) }

func (s *Service) handle(str network.Stream) {
	release, err := streams.Accept(str, ServiceName, MaxRequestSize+MaxResponseSize, StreamTimeout)
	if err != nil {
		s.log.Debug("wants: refused stream", "peer", str.Conn().RemotePeer(), "err", err)
		return
	}
	defer release()
	req, err := readRequest(str)
	if err != nil {
		s.Stats.Malformed.Add(1)
		s.log.Info("wants: dropped malformed request", "peer", str.Conn().RemotePeer(), "err", err)
		str.Reset()
		return
	}
	limit := int(req.GetLimit())
	if limit <= 0 || limit > MaxResults {
		limit = MaxResults
	}
	s.Stats.Served.Add(1)
	w := pbio.NewDelimitedWriter(str)
	for _, env := range s.src.OwnWants(req.GetTerms(), limit) {
		if err := w.WriteMsg(&wirev1.WantsResponse{Envelope: env}); err != nil {
			str.Reset()
			return
		}
		s.Stats.Results.Add(1)
	}
	_ = str.Close()
}

// readRequest decodes one length-delimited WantsRequest within the caps.
func readRequest(r io.Reader) (*wirev1.WantsRequest, error) {
	req, err := streams.ReadMsg[wirev1.WantsRequest](r, MaxRequestSize)
	if err != nil {
		return nil, err
	}
	if len(req.GetTerms()) > MaxTerms {
		return nil, fmt.Errorf("%d terms, at most %d allowed", len(req.GetTerms()), MaxTerms)
	}
	for _, t := range req.GetTerms() {
		if len(t) > MaxTermLen {
			return nil, fmt.Errorf("a term of %d bytes, at most %d allowed", len(t), MaxTermLen)
		}
	}
	return req, nil
}

// ClientStats counts the wants an asker dropped, by reason.
type ClientStats struct {
	Accepted  atomic.Int64 // wants kept
	Forged    atomic.Int64 // bad signature, or signed by other than the owner
	Replayed  atomic.Int64 // served by a peer other than the want's owner
	Expired   atomic.Int64 // past expiry
	Malformed atomic.Int64 // breaking a want's limits (huge query, bad times)
	Flood     atomic.Int64 // beyond MaxWantsPerPeer from one peer, or repeated
}

// ErrRemote is wrapped by errors that the remote peer reported.
var ErrRemote = errors.New("peer refused the request")

// Ask sends terms to peer p and calls fn with each envelope p answers with,
// at most MaxResults, until p is done, fn returns false, or ctx ends.
// Envelopes are not verified here; Fetch does that.
func Ask(ctx context.Context, h host.Host, p peer.ID, terms []string, limit int, fn func(envelope []byte) bool) error {
	if len(terms) > MaxTerms {
		terms = terms[:MaxTerms]
	}
	str, err := h.NewStream(network.WithAllowLimitedConn(ctx, "pullnet-wants"), p, ID)
	if err != nil {
		return fmt.Errorf("wants: open stream to %s: %w", p, err)
	}
	stop := streams.Bind(ctx, str, StreamTimeout)
	defer stop()
	if err := str.Scope().SetService(ServiceName); err != nil {
		str.Reset()
		return fmt.Errorf("wants: %w", err)
	}
	if err := pbio.NewDelimitedWriter(str).WriteMsg(&wirev1.WantsRequest{Terms: terms, Limit: uint32(limit)}); err != nil {
		str.Reset()
		return fmt.Errorf("wants: send to %s: %w", p, err)
	}
	_ = str.CloseWrite()
	for range MaxResults {
		resp, err := streams.ReadMsg[wirev1.WantsResponse](str, MaxResponseSize)
		if err != nil {
			if errors.Is(err, io.EOF) {
				_ = str.Close()
				return nil
			}
			str.Reset()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("wants: read from %s: %w", p, err)
		}
		if e := resp.GetError(); e != "" {
			_ = str.Close()
			return fmt.Errorf("%w: %s", ErrRemote, e)
		}
		if !fn(resp.GetEnvelope()) {
			break
		}
	}
	str.Reset() // done, or the peer sends more than MaxResults
	return nil
}

// Fetch asks p for its wants sharing one of terms and returns those that
// verify (see the package doc), counting the rest in st by reason.
func Fetch(ctx context.Context, h host.Host, p peer.ID, terms []string, now func() time.Time, st *ClientStats) ([]signed.WantRecord, error) {
	v := NewVerifier(p, st)
	var out []signed.WantRecord
	err := Ask(ctx, h, p, terms, MaxResults, func(env []byte) bool {
		if rec, ok := v.Check(env, now()); ok {
			out = append(out, rec)
		}
		return true
	})
	return out, err
}

// Verifier checks the wants one peer served.
type Verifier struct {
	from peer.ID
	st   *ClientStats
	seen map[string]bool
}

// NewVerifier checks wants served by from, counting drops in st.
func NewVerifier(from peer.ID, st *ClientStats) *Verifier {
	return &Verifier{from: from, st: st, seen: map[string]bool{}}
}

// Check opens env and reports whether to keep it.
func (v *Verifier) Check(env []byte, now time.Time) (signed.WantRecord, bool) {
	rec, err := signed.OpenWant(env, now)
	switch {
	case errors.Is(err, signed.ErrBadSignature), errors.Is(err, signed.ErrNotOwner):
		v.st.Forged.Add(1)
		return rec, false
	case errors.Is(err, signed.ErrExpired):
		v.st.Expired.Add(1)
		return rec, false
	case err != nil:
		v.st.Malformed.Add(1)
		return rec, false
	case rec.Want.Owner != v.from:
		v.st.Replayed.Add(1)
		return rec, false
	case v.seen[rec.Want.ID] || len(v.seen) >= MaxWantsPerPeer:
		v.st.Flood.Add(1)
		return rec, false
	}
	v.seen[rec.Want.ID] = true
	v.st.Accepted.Add(1)
	return rec, true
}

// Shares reports whether the want's query has one of terms among its index
// terms; every want shares with an empty list.
func Shares(q *query.Query, terms []string) bool {
	if len(terms) == 0 {
		return true
	}
	for _, t := range q.IndexTerms() {
		for _, u := range terms {
			if t == u {
				return true
			}
		}
	}
	return false
}
