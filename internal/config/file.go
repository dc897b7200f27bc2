package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Error is a problem with a configuration file. Its message is a single line,
// fit for a log line or a CLI's one-line failure reason, such as
//
//	config /home/ada/.pullnet/config.toml line 3: unknown key "lisen"
type Error struct {
	// File names the file (or whatever name was given to Parse).
	File string
	// Line is the 1-based line of the problem, or 0 when unknown.
	Line int
	// Msg describes the problem.
	Msg string
	// Err is the underlying error, if any, for errors.Is and errors.As.
	Err error
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("config %s line %d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("config %s: %s", e.File, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Load reads and validates the configuration file at path. A missing file is
// not an error: it yields the zero Config, which means all defaults. Any
// other problem, including an unknown key or an invalid value, is an *Error.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Config{}, nil
	}
	if err != nil {
		// The PathError already names the operation and the file; keep only
		// its cause so the file appears once, in our own prefix.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return Config{}, &Error{File: path, Msg: err.Error(), Err: err}
	}
	return Parse(data, path)
}

// Parse decodes and validates a configuration document; name is used in
// error messages, normally the file's path.
func Parse(data []byte, name string) (Config, error) {
	var c Config
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, decodeError(name, data, err)
	}
	if err := c.Validate(); err != nil {
		e := &Error{File: name, Msg: oneLine(err.Error()), Err: err}
		var fe *fieldError
		if errors.As(err, &fe) {
			e.Line = keyLine(data, fe.key)
		}
		return Config{}, e
	}
	return c, nil
}

// decodeError turns a go-toml error, whose human-readable form spans several
// lines, into a one-line *Error with the line number go-toml knows.
func decodeError(name string, data []byte, err error) *Error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) && len(strict.Errors) > 0 {
		first := &strict.Errors[0]
		line, _ := first.Position()
		msg := fmt.Sprintf("unknown key %q", strings.Join(first.Key(), "."))
		if n := len(strict.Errors) - 1; n > 0 {
			msg += fmt.Sprintf(" (and %d more)", n)
		}
		return &Error{File: name, Line: line, Msg: msg, Err: err}
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, _ := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if key := strings.Join(de.Key(), "."); key != "" && !strings.HasPrefix(msg, key) {
			msg = key + ": " + msg
		}
		return &Error{File: name, Line: line, Msg: oneLine(msg), Err: err}
	}
	var due *durationError
	if errors.As(err, &due) {
		// go-toml passes non-string values to UnmarshalText without a
		// position; find the offending key ourselves.
		if key, line := badDuration(data); key != "" {
			return &Error{File: name, Line: line, Msg: key + ": " + due.Error(), Err: err}
		}
	}
	return &Error{File: name, Msg: oneLine(strings.TrimPrefix(err.Error(), "toml: ")), Err: err}
}

// badDuration returns the first top-level duration key whose value does not
// decode, and its line.
func badDuration(data []byte) (key string, line int) {
	var p unstable.Parser
	p.Reset(data)
	for p.NextExpression() {
		e := p.Expression()
		if e.Kind != unstable.KeyValue {
			continue
		}
		it := e.Key()
		if !it.Next() || !it.IsLast() {
			continue
		}
		k := string(it.Node().Data)
		if k != "approval_timeout" && k != "reprovide_interval" {
			continue
		}
		v := e.Value()
		var d Duration
		if v.Kind != unstable.String || d.UnmarshalText(v.Data) != nil {
			return k, p.Shape(e.Raw).Start.Line
		}
	}
	return "", 0
}

// keyLine returns the line of the top-level key in a document that has
// already decoded successfully, or 0. Config has no tables, so the first
// key-value expression with that name is the one.
func keyLine(data []byte, key string) int {
	var p unstable.Parser
	p.Reset(data)
	for p.NextExpression() {
		e := p.Expression()
		if e.Kind != unstable.KeyValue {
			continue
		}
		it := e.Key()
		if it.Next() && string(it.Node().Data) == key && it.IsLast() {
			return p.Shape(e.Raw).Start.Line
		}
	}
	return 0
}

// oneLine keeps a message on one line, as the Error contract promises, even
// when a wrapped error (go-toml's, a multiaddr parser's) spans several.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }), " ")
}

// Write stores c at path as a commented TOML file, mode 0600, replacing any
// existing file atomically: readers see the old file or the new one, never a
// torn write, even after a crash. Keys whose field is empty are written
// commented out with their default value, so the file documents every option
// while still following the built-in defaults. Write refuses an invalid c.
func Write(path string, c Config) error {
	if err := c.Validate(); err != nil {
		return &Error{File: path, Msg: "not written: " + err.Error(), Err: err}
	}
	data, err := Marshal(c)
	if err != nil {
		return &Error{File: path, Msg: err.Error(), Err: err}
	}
	if err := writeFileAtomic(path, data, 0o600); err != nil {
		return &Error{File: path, Msg: oneLine(err.Error()), Err: err}
	}
	return nil
}

const header = `# pulld configuration. Edit and restart pulld; check with "pulld config validate".
# Command-line flags override values set here. A commented-out key shows the
# default that applies while it stays commented out. Unknown keys are an error.
`

// Marshal renders c as the commented document Write stores.
func Marshal(c Config) ([]byte, error) {
	d := Default()
	var b bytes.Buffer
	b.WriteString(header)

	type entry struct {
		key     string
		doc     string
		set     bool
		value   any
		initial any // shown, commented out, when the field is empty
	}
	entries := []entry{
		{"listen", "Multiaddrs to listen on for peers.",
			len(c.Listen) > 0, c.Listen, d.Listen},
		{"bootstrap", "Peers to join the network through, as multiaddrs ending in /p2p/<peer ID>.",
			len(c.Bootstrap) > 0, c.Bootstrap, []string{}},
		{"mdns", "Discover peers on the local network with mDNS.",
			c.MDNS != nil, c.MDNSEnabled(), true},
		{"policy", `Who may connect to your resources: "open" (anyone), "allowlist"
(the peers in allow) or "manual" (you decide each request through peerctl).`,
			c.Policy != "", c.Policy, d.Policy},
		{"allow", `Peer IDs granted access when policy = "allowlist".`,
			len(c.Allow) > 0, c.Allow, []string{}},
		{"approval_timeout", `How long a request waits for your decision when policy = "manual".`,
			c.ApprovalTimeout.Duration != 0, c.ApprovalTimeout.String(), d.ApprovalTimeout.String()},
		{"reprovide_interval", "How often your resources are re-announced in the DHT.",
			c.ReprovideInterval.Duration != 0, c.ReprovideInterval.String(), d.ReprovideInterval.String()},
		{"log_level", `Minimum level logged: "debug", "info", "warn" or "error".`,
			c.LogLevel != "", c.LogLevel, d.LogLevel},
		{"log_format", `Log format: "text" or "json" (one object per line).`,
			c.LogFormat != "", c.LogFormat, d.LogFormat},
		{"relay_service", "Relay traffic for peers behind NAT (circuit relay v2, small limits).",
			c.RelayService, c.RelayService, false},
		{"watch_refind", "How often watches re-run their query as a find, to fill in what gossip missed.",
			c.WatchRefind.Duration != 0, c.WatchRefind.String(), "1m0s"},
		{"dht_mode", `"server" answers DHT queries, "client" only asks, "auto" lets AutoNAT decide
(choose "auto" or "client" behind NAT).`,
			c.DHTMode != "", c.DHTMode, d.DHTMode},
		{"record_queries", `Keep the whole queries other peers send in your local demand counts
('peerctl demand'); off keeps only how often each query term was asked.`,
			c.RecordQueries, c.RecordQueries, false},
	}
	for _, e := range entries {
		b.WriteByte('\n')
		for _, l := range strings.Split(e.doc, "\n") {
			b.WriteString("# " + l + "\n")
		}
		v, prefix := e.value, ""
		if !e.set {
			v, prefix = e.initial, "# "
		}
		// go-toml does the quoting, so any string is written as valid TOML.
		line, err := toml.Marshal(map[string]any{e.key: v})
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", e.key, err)
		}
		b.WriteString(prefix)
		b.Write(line)
	}
	return b.Bytes(), nil
}

// writeFileAtomic writes data to a temporary file next to path, syncs it,
// renames it over path and syncs the directory, so that a crash leaves either
// the old content or the new one.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
