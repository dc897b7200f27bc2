package node

import (
	"log/slog"
	"time"

	ds "github.com/ipfs/go-datastore"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Config configures a Node. The zero Config is a working node: a fresh
// identity, an in-memory store, TCP and QUIC on all interfaces, no
// bootstrap peers, no mDNS, and the open policy.
type Config struct {
	// DataDir holds the identity key and the store, so the peer ID and what
	// the node advertised survive a restart. Empty means nothing is kept:
	// a fresh key (unless Key is set) and an in-memory datastore.
	DataDir string

	// Key is the node's identity. Nil means the key in DataDir (created on
	// first use), or a fresh Ed25519 key when DataDir is empty.
	Key crypto.PrivKey

	// Datastore stores the node's resources, sessions and the DHT's
	// provider records. Nil means pebble under DataDir, or an in-memory map
	// when DataDir is empty. A datastore passed in is not closed by Close.
	Datastore ds.Batching

	// Host is a libp2p host to run on instead of making one, e.g. a mocknet
	// host in tests. Nil means the node makes its own from Key and
	// ListenAddrs. A host passed in is not closed by Close, and its key
	// must be available from its peerstore.
	Host host.Host

	// ListenAddrs are the addresses the node's own host listens on. Nil
	// means TCP and QUIC on all IPv4 interfaces at OS-chosen ports.
	ListenAddrs []ma.Multiaddr

	// Bootstrap lists peers to join the network through. Empty means none:
	// the node learns peers from mDNS or from peers that dial it.
	Bootstrap []peer.AddrInfo

	// MDNS finds peers on the local network. False means off.
	MDNS bool

	// Policy decides incoming connect requests. The zero Policy is open.
	Policy Policy

	// ApprovalTimeout is how long a request waits for Approve or Decline
	// under the manual policy. Zero means DefaultApprovalTimeout.
	ApprovalTimeout time.Duration

	// ReprovideInterval is how often the node re-announces its index terms
	// in the DHT, which keeps its provider records from expiring. Zero
	// means DefaultReprovideInterval.
	ReprovideInterval time.Duration

	// WatchRefind is how often a watch re-runs its query as a find, to fill
	// in what gossip missed. Zero means DefaultRefind (a minute).
	WatchRefind time.Duration

	// RelayService lets peers behind NAT reach others through this node
	// (circuit relay v2, with go-libp2p's small default limits). False
	// means the node only uses relays, never serves as one.
	RelayService bool

	// DHTMode is DHTServer, DHTClient or DHTAuto. Empty means DHTServer:
	// every pulld serves the DHT unless it cannot be reached (behind NAT,
	// choose DHTAuto so AutoNAT decides).
	DHTMode string

	// Security picks the transport security of the node's own host: "tls"
	// (TLS 1.3 only), "noise" (Noise only), or empty for both, TLS
	// preferred (its AES-GCM uses the CPU's AES instructions).
	Security string

	// RecordQueries keeps, in the node's local demand counts, the whole
	// queries other peers send it. False means only per-term counts of
	// their queries are kept (see Demand).
	RecordQueries bool

	// Bandwidth, when set, counts the traffic of the node's own host by
	// protocol (libp2p's metrics.Reporter). Nil means nothing is counted.
	Bandwidth metrics.Reporter

	// Logger receives the node's logs. Nil means they are discarded.
	Logger *slog.Logger

	// DHTOptions are extra go-libp2p-kad-dht options applied after
	// pullnet's own, for simulators and tests. Nil means none.
	DHTOptions []dht.Option

	// NoAnnounce skips the gossip announcements Advertise and Withdraw
	// make for watchers, who then learn of changes only by their periodic
	// re-find. For simulators that measure the DHT path at scale; false,
	// the default, announces.
	NoAnnounce bool
}

// DHT modes.
const (
	DHTServer = "server"
	DHTClient = "client"
	DHTAuto   = "auto"
)

// Defaults for zero Config fields.
const (
	DefaultApprovalTimeout   = 2 * time.Minute
	DefaultReprovideInterval = 12 * time.Hour
)

// Policy modes.
const (
	PolicyOpen      = "open"
	PolicyAllowlist = "allowlist"
	PolicyManual    = "manual"
)

// Policy is how a provider decides connect requests.
type Policy struct {
	// Mode is PolicyOpen, PolicyAllowlist or PolicyManual. Empty means open.
	Mode string
	// Allow lists the peers that an allowlist policy grants.
	Allow []peer.ID
	// SessionLifetime is how long a granted session lasts. Zero means 24 h.
	SessionLifetime time.Duration
	// MinTrust declines consumers this node trusts less than this (trust
	// runs from -1 through 0, a peer it knows nothing of, to +1), whatever
	// the mode. Zero means no minimum: 0.1 admits only peers with some
	// good record, -0.3 turns away only the clearly distrusted.
	MinTrust float64
}
