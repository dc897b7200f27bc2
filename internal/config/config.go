// Package config reads, checks and writes pulld's configuration file,
// DATA/config.toml.
//
// The file is TOML with snake_case keys, all at the top level. Every key is
// optional: an absent or empty value means the built-in default documented on
// the corresponding Config field, so a file written by an older pulld keeps
// following the defaults of a newer one. Unknown keys are an error rather than
// being ignored, because a misspelt key silently doing nothing is the worst
// kind of configuration bug. Command-line flags override the file; merging
// them is the caller's job.
package config

import (
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Connection policies: how a provider answers connect requests.
const (
	// PolicyOpen grants every request.
	PolicyOpen = "open"
	// PolicyAllowlist grants requests from the peers listed in Config.Allow
	// and declines all others.
	PolicyAllowlist = "allowlist"
	// PolicyManual asks the participant through the control API and declines
	// when nobody answers within Config.ApprovalTimeout.
	PolicyManual = "manual"
)

// Defaults applied to empty fields by Config.WithDefaults.
const (
	DefaultPolicy            = PolicyOpen
	DefaultApprovalTimeout   = 2 * time.Minute
	DefaultReprovideInterval = 12 * time.Hour
	DefaultLogLevel          = "info"
	DefaultLogFormat         = "text"
)

// DefaultListen returns the listen addresses used when Config.Listen is
// empty: every interface, an OS-chosen port, over TCP and QUIC.
func DefaultListen() []string {
	return []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"}
}

var (
	policies   = []string{PolicyOpen, PolicyAllowlist, PolicyManual}
	logLevels  = []string{"debug", "info", "warn", "error"}
	logFormats = []string{"text", "json"}
	dhtModes   = []string{"server", "client", "auto"}
)

// Config is the content of config.toml. The zero Config is valid and means
// "all defaults".
type Config struct {
	// Listen lists the multiaddrs the libp2p host listens on. Empty means
	// DefaultListen: all IPv4 interfaces on an OS-chosen TCP and QUIC port.
	Listen []string `toml:"listen"`

	// Bootstrap lists peers to join the network through, as multiaddrs ending
	// in /p2p/<peer ID>. Empty means none: the node finds peers only through
	// mDNS or peers that dial it.
	Bootstrap []string `toml:"bootstrap"`

	// MDNS enables discovery of peers on the local network. Nil (absent)
	// means enabled; see MDNSEnabled.
	MDNS *bool `toml:"mdns"`

	// Policy decides connect requests: PolicyOpen, PolicyAllowlist or
	// PolicyManual. Empty means PolicyOpen.
	Policy string `toml:"policy"`

	// Allow lists the peer IDs granted access under PolicyAllowlist. Empty
	// means nobody. It is ignored under the other policies.
	Allow []string `toml:"allow"`

	// MinTrust declines connect requests from peers this node trusts less,
	// whatever the policy (trust runs from -1 through 0, a peer the node
	// knows nothing of, to +1). Zero means no minimum.
	MinTrust float64 `toml:"min_trust"`

	// ApprovalTimeout is how long a connect request waits for the
	// participant's decision under PolicyManual. Zero means
	// DefaultApprovalTimeout.
	ApprovalTimeout Duration `toml:"approval_timeout"`

	// ReprovideInterval is how often the node re-announces its resources in
	// the DHT. Zero means DefaultReprovideInterval.
	ReprovideInterval Duration `toml:"reprovide_interval"`

	// LogLevel is the minimum level logged: "debug", "info", "warn" or
	// "error". Empty means "info".
	LogLevel string `toml:"log_level"`

	// LogFormat is "text" or "json" (one object per line). Empty means
	// "text".
	LogFormat string `toml:"log_format"`

	// RelayService lets peers behind NAT reach others through this node
	// (circuit relay v2 with small limits). False (absent) means off.
	RelayService bool `toml:"relay_service"`

	// DHTMode is "server" (answer DHT queries), "client" (only ask) or
	// "auto" (AutoNAT decides: server when reachable). Empty means
	// "server".
	DHTMode string `toml:"dht_mode"`

	// WatchRefind is how often watches re-run their query as a find, to
	// fill in what gossip missed. Zero means one minute.
	WatchRefind Duration `toml:"watch_refind"`

	// RecordQueries keeps the whole queries other peers send in the local
	// demand counts. False (absent) means only per-term counts are kept.
	RecordQueries bool `toml:"record_queries"`
}

// Default returns the configuration pulld uses when the file sets nothing,
// with every default spelled out.
func Default() Config {
	return Config{}.WithDefaults()
}

// WithDefaults returns a copy of c with every empty field replaced by its
// default, so that callers never need to interpret "empty" themselves.
// Slices are copied; the result shares no memory with c.
func (c Config) WithDefaults() Config {
	c.Listen = slices.Clone(c.Listen)
	if len(c.Listen) == 0 {
		c.Listen = DefaultListen()
	}
	c.Bootstrap = slices.Clone(c.Bootstrap)
	c.Allow = slices.Clone(c.Allow)
	on := c.MDNSEnabled()
	c.MDNS = &on
	if c.Policy == "" {
		c.Policy = DefaultPolicy
	}
	if c.ApprovalTimeout.Duration == 0 {
		c.ApprovalTimeout.Duration = DefaultApprovalTimeout
	}
	if c.ReprovideInterval.Duration == 0 {
		c.ReprovideInterval.Duration = DefaultReprovideInterval
	}
	if c.LogLevel == "" {
		c.LogLevel = DefaultLogLevel
	}
	if c.LogFormat == "" {
		c.LogFormat = DefaultLogFormat
	}
	if c.DHTMode == "" {
		c.DHTMode = "server"
	}
	return c
}

// MDNSEnabled reports whether local-network discovery is on; it is unless the
// file says mdns = false.
func (c Config) MDNSEnabled() bool {
	return c.MDNS == nil || *c.MDNS
}

// fieldError is a validation failure of one key. Parse uses the key to find
// the line to report.
type fieldError struct {
	key string
	msg string
}

func (e *fieldError) Error() string { return e.key + ": " + e.msg }

func invalid(key, format string, args ...any) error {
	return &fieldError{key: key, msg: fmt.Sprintf(format, args...)}
}

// Validate checks every value of c and returns the first problem found, as
// one line starting with the offending key. Empty fields are valid.
func (c Config) Validate() error {
	for i, s := range c.Listen {
		if _, err := ma.NewMultiaddr(s); err != nil {
			return invalid("listen", "entry %d %q is not a multiaddr: %v", i+1, s, err)
		}
	}
	for i, s := range c.Bootstrap {
		if err := checkBootstrap(s); err != nil {
			return invalid("bootstrap", "entry %d %q %v", i+1, s, err)
		}
	}
	if c.Policy != "" && !slices.Contains(policies, c.Policy) {
		return invalid("policy", "%q is not one of %q", c.Policy, policies)
	}
	for i, s := range c.Allow {
		if _, err := peer.Decode(s); err != nil {
			return invalid("allow", "entry %d %q is not a peer ID: %v", i+1, s, err)
		}
	}
	if c.MinTrust < -1 || c.MinTrust > 1 || c.MinTrust != c.MinTrust {
		return invalid("min_trust", "%v is outside -1…1", c.MinTrust)
	}
	if c.ApprovalTimeout.Duration < 0 {
		return invalid("approval_timeout", "%s is negative", c.ApprovalTimeout)
	}
	if c.WatchRefind.Duration < 0 {
		return invalid("watch_refind", "%s is negative", c.WatchRefind)
	}
	if c.ReprovideInterval.Duration < 0 {
		return invalid("reprovide_interval", "%s is negative", c.ReprovideInterval)
	}
	if c.LogLevel != "" && !slices.Contains(logLevels, c.LogLevel) {
		return invalid("log_level", "%q is not one of %q", c.LogLevel, logLevels)
	}
	if c.LogFormat != "" && !slices.Contains(logFormats, c.LogFormat) {
		return invalid("log_format", "%q is not one of %q", c.LogFormat, logFormats)
	}
	if c.DHTMode != "" && !slices.Contains(dhtModes, c.DHTMode) {
		return invalid("dht_mode", "%q is not one of %q", c.DHTMode, dhtModes)
	}
	return nil
}

// checkBootstrap accepts a dialable peer address: a transport part followed
// by /p2p/<ID>. A bare /p2p/<ID> is refused because a bootstrap peer is only
// useful if we know where to dial it.
func checkBootstrap(s string) error {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return fmt.Errorf("is not a multiaddr: %v", err)
	}
	transport, id := peer.SplitAddr(m)
	if id == "" {
		return fmt.Errorf("does not end in /p2p/<peer ID>")
	}
	if len(transport) == 0 {
		return fmt.Errorf("has no address to dial before /p2p/")
	}
	return nil
}

// Duration is a time.Duration written in the file as a Go duration string
// such as "90s", "2m" or "12h". Writing a bare number is an error rather than
// a number of nanoseconds, which is why this is a struct and not a named
// integer type: go-toml would store an integer into the latter directly.
type Duration struct {
	// The tag hides the field from go-toml, which would otherwise accept an
	// inline table {duration = 5} as five nanoseconds.
	time.Duration `toml:"-"`
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.Duration.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return &durationError{text: string(b)}
	}
	d.Duration = v
	return nil
}

// durationError lets Parse recognise a bad duration, which go-toml reports
// without a position when the value is not a string.
type durationError struct{ text string }

func (e *durationError) Error() string {
	return fmt.Sprintf("invalid duration %q: want a quoted number with a unit, like \"90s\", \"2m\" or \"12h\"", e.text)
}
