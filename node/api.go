package node

import (
	"errors"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pullnet/pullnet/resource"
)

// FindOptions tune one Find.
type FindOptions struct {
	// Limit stops the find after this many results. Zero means DefaultFindLimit.
	Limit int
	// MinTrust drops results whose provider this node trusts less (trust
	// runs from -1 through 0, unknown, to +1). Zero means no minimum.
	MinTrust float64
	// Ranked holds the results until the find ends (its limit, its
	// providers exhausted, or ctx done) and yields them best first, by
	// Rank. Unranked, results come as they arrive, each provider's
	// batch in order of relevance.
	Ranked bool
}

// DefaultFindLimit is the result limit of a Find whose options set none.
const DefaultFindLimit = 20

// Result is one resource found on the network.
type Result struct {
	Resource resource.Resource
	// Provider is the peer that answered for the resource (its owner).
	Provider peer.ID
	// Addrs are the provider's addresses as the finder knows them.
	Addrs []ma.Multiaddr
	// Elapsed is the time from the start of the find to this result.
	Elapsed time.Duration
	// Score is the result's relevance to the query, in (0, 1].
	Score float64
	// Trust is this node's trust in the provider, from -1 to +1 (0:
	// nothing known); see Node.Trust.
	Trust float64
	// Rank orders results: relevance × (1+Trust)/2.
	Rank float64
}

// Grant is a provider's answer to Connect: a session when Granted, otherwise
// the provider's reason for declining.
type Grant struct {
	Granted  bool
	Session  string
	Reason   string
	Access   resource.Access
	Provider peer.ID
	// ResourceID is the resource the grant is for.
	ResourceID string
	// Receipt is the provider's signed receipt of the session (a libp2p
	// signed envelope); empty on a decline. It is also the token that opens
	// tunnels under the session.
	Receipt []byte
	// Expires is when the session ends; zero on a decline.
	Expires time.Time
}

// Request is a connect request waiting for the participant's decision under
// the manual policy.
type Request struct {
	Session    string
	ResourceID string
	Consumer   peer.ID
	Message    string
	Received   time.Time
}

// PeerInfo describes one live connection of the node.
type PeerInfo struct {
	ID        peer.ID
	Addrs     []ma.Multiaddr
	Direction network.Direction
	// Latency is the host's latency estimate; zero when unknown.
	Latency time.Duration
	// Relayed is true when the node reaches the peer only through a relay.
	Relayed bool
	// Transport is "tcp", "quic", "webtransport", "relay" or "other".
	Transport string
}

// Errors that callers can test for with errors.Is.
var (
	// ErrNotFound: no such resource, session or request on this node.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the caller's input is malformed (a bad query, a resource
	// that breaks the model). The wrapped message says what to fix.
	ErrInvalid = errors.New("invalid argument")
	// ErrClosed: the node has been closed.
	ErrClosed = errors.New("node closed")
)
