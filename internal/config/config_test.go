package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const testPeer = "12D3KooWGzBdBd8Y4Sq7zE5aS4h7e2QXcSqJ4tbX6v3sYtA7Vn4r"

func ptr[T any](v T) *T { return &v }

func TestParse(t *testing.T) {
	const name = "/x/config.toml"
	tests := []struct {
		name string
		doc  string
		want Config
		// err is the whole expected message; empty means success.
		err string
		// line is the expected Error.Line when err is set.
		line int
	}{
		{
			name: "empty",
			doc:  "",
			want: Config{},
		},
		{
			name: "good",
			doc: `# comment
listen = ["/ip4/0.0.0.0/tcp/4001", "/ip6/::/udp/4001/quic-v1"]
bootstrap = ["/dnsaddr/example.org/p2p/` + testPeer + `"]
mdns = false
policy = "allowlist"
allow = ["` + testPeer + `"]
min_trust = 0.2
approval_timeout = "90s"
reprovide_interval = "6h"
log_level = "debug"
log_format = "json"
`,
			want: Config{
				Listen:            []string{"/ip4/0.0.0.0/tcp/4001", "/ip6/::/udp/4001/quic-v1"},
				Bootstrap:         []string{"/dnsaddr/example.org/p2p/" + testPeer},
				MDNS:              ptr(false),
				Policy:            PolicyAllowlist,
				Allow:             []string{testPeer},
				MinTrust:          0.2,
				ApprovalTimeout:   Duration{90 * time.Second},
				ReprovideInterval: Duration{6 * time.Hour},
				LogLevel:          "debug",
				LogFormat:         "json",
			},
		},
		{
			name: "unknown key",
			doc:  "# pulld\n\nlisen = [\"/ip4/0.0.0.0/tcp/0\"]\n",
			err:  name + ` line 3: unknown key "lisen"`,
			line: 3,
		},
		{
			name: "several unknown keys",
			doc:  "policy = \"open\"\nfoo = 1\nbar = 2\n",
			err:  name + ` line 2: unknown key "foo" (and 1 more)`,
			line: 2,
		},
		{
			name: "unknown table",
			doc:  "policy = \"open\"\n[node]\nlisten = []\n",
			err:  name + ` line 2: unknown key "node"`,
			line: 2,
		},
		{
			name: "bad policy",
			doc:  "log_level = \"info\"\npolicy = \"closed\"\n",
			err:  name + ` line 2: policy: "closed" is not one of ["open" "allowlist" "manual"]`,
			line: 2,
		},
		{
			name: "bad listen multiaddr",
			doc:  "listen = [\"/ip4/0.0.0.0/tcp/0\", \"/ip4/localhost/tcp/1\"]\n",
			err:  name + ` line 1: listen: entry 2 "/ip4/localhost/tcp/1" is not a multiaddr`,
			line: 1,
		},
		{
			name: "bootstrap without peer ID",
			doc:  "\nbootstrap = [\"/ip4/1.2.3.4/tcp/4001\"]\n",
			err:  name + ` line 2: bootstrap: entry 1 "/ip4/1.2.3.4/tcp/4001" does not end in /p2p/<peer ID>`,
			line: 2,
		},
		{
			name: "bootstrap without address",
			doc:  "bootstrap = [\"/p2p/" + testPeer + "\"]\n",
			err:  name + ` line 1: bootstrap: entry 1 "/p2p/` + testPeer + `" has no address to dial before /p2p/`,
			line: 1,
		},
		{
			name: "bad peer ID",
			doc:  "allow = [\"bob\"]\n",
			err:  name + ` line 1: allow: entry 1 "bob" is not a peer ID`,
			line: 1,
		},
		{
			name: "bad duration string",
			doc:  "policy = \"manual\"\napproval_timeout = \"2 minutes\"\n",
			err:  name + ` line 2: approval_timeout: invalid duration "2 minutes"`,
			line: 2,
		},
		{
			name: "duration as a number",
			doc:  "\n\nreprovide_interval = 3600\n",
			err:  name + ` line 3: reprovide_interval: invalid duration "3600"`,
			line: 3,
		},
		{
			name: "duration as a table",
			doc:  "approval_timeout = {duration = 5}\n",
			err:  name + ` line 1: unknown key "duration"`,
			line: 1,
		},
		{
			name: "min_trust out of range",
			doc:  "policy = \"open\"\nmin_trust = 1.5\n",
			err:  name + ` line 2: min_trust: 1.5 is outside -1…1`,
			line: 2,
		},
		{
			name: "negative duration",
			doc:  "approval_timeout = \"-1m\"\n",
			err:  name + ` line 1: approval_timeout: -1m0s is negative`,
			line: 1,
		},
		{
			name: "bad log level",
			doc:  "log_level = \"trace\"\n",
			err:  name + ` line 1: log_level: "trace" is not one of ["debug" "info" "warn" "error"]`,
			line: 1,
		},
		{
			name: "bad log format",
			doc:  "log_format = \"xml\"\n",
			err:  name + ` line 1: log_format: "xml" is not one of ["text" "json"]`,
			line: 1,
		},
		{
			name: "wrong type",
			doc:  "mdns = \"yes\"\n",
			err:  name + ` line 1: mdns: cannot decode TOML string`,
			line: 1,
		},
		{
			name: "syntax error",
			doc:  "policy = \"open\"\nlisten = = 1\n",
			err:  name + ` line 2: `,
			line: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.doc), name)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("Parse = %+v, want %+v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse succeeded with %+v, want error %q", got, tt.err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "config "+tt.err) {
				t.Errorf("error %q\nwant prefix %q", msg, "config "+tt.err)
			}
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("error spans several lines: %q", msg)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *config.Error", err)
			}
			if ce.Line != tt.line || ce.File != name {
				t.Errorf("File, Line = %q, %d; want %q, %d", ce.File, ce.Line, name, tt.line)
			}
			if !reflect.DeepEqual(got, Config{}) {
				t.Errorf("Parse returned %+v with its error, want the zero Config", got)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	c, err := Load(filepath.Join(t.TempDir(), "config.toml"))
	if err != nil {
		t.Fatalf("Load of a missing file: %v", err)
	}
	if !reflect.DeepEqual(c, Config{}) {
		t.Fatalf("Load of a missing file = %+v, want the zero Config", c)
	}
}

func TestLoadNamesFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte("\npolicy = \"nobody\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	want := "config " + path + ` line 2: policy: "nobody" is not one of`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("Load error = %v, want prefix %q", err, want)
	}

	// A directory where the file should be: an error naming the path once.
	_, err = Load(dir)
	if err == nil || strings.Count(err.Error(), dir) != 1 || !strings.HasPrefix(err.Error(), "config "+dir+": ") {
		t.Fatalf("Load of a directory: error %v", err)
	}
}

func TestWriteLoadRoundTrip(t *testing.T) {
	full := Config{
		Listen:            []string{"/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/4001/quic-v1"},
		Bootstrap:         []string{"/ip4/192.0.2.1/tcp/4001/p2p/" + testPeer},
		MDNS:              ptr(false),
		Policy:            PolicyManual,
		Allow:             []string{testPeer},
		ApprovalTimeout:   Duration{30 * time.Second},
		ReprovideInterval: Duration{time.Hour},
		LogLevel:          "warn",
		LogFormat:         "json",
	}
	tests := []struct {
		name string
		c    Config
	}{
		{"zero", Config{}},
		{"defaults", Default()},
		{"full", full},
		{"mdns on", Config{MDNS: ptr(true)}},
		{"some", Config{Policy: PolicyAllowlist, Allow: []string{testPeer}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "config.toml")
			// Write over an existing file to check replacement too.
			if err := os.WriteFile(path, []byte("garbage"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := Write(path, tt.c); err != nil {
				t.Fatalf("Write: %v", err)
			}
			got, err := Load(path)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(got, tt.c) {
				t.Fatalf("Load after Write = %+v, want %+v", got, tt.c)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if perm := fi.Mode().Perm(); perm != 0o600 {
				t.Errorf("mode = %v, want 0600", perm)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				t.Errorf("directory holds %d entries after Write, want only config.toml", len(entries))
			}
		})
	}
}

func TestWriteDocumentsEveryKey(t *testing.T) {
	b, err := Marshal(Config{})
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, key := range []string{"listen", "bootstrap", "mdns", "policy", "allow", "approval_timeout", "reprovide_interval", "log_level", "log_format"} {
		if !strings.Contains(doc, "\n# "+key+" = ") {
			t.Errorf("default file lacks a commented-out %q:\n%s", key, doc)
		}
	}
}

func TestWriteRefusesInvalid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	err := Write(path, Config{Policy: "everyone"})
	if err == nil {
		t.Fatal("Write of an invalid config succeeded")
	}
	if _, statErr := os.Stat(path); !errors.Is(statErr, fs.ErrNotExist) {
		t.Errorf("Write left a file behind after failing: %v", statErr)
	}
}

func TestWithDefaults(t *testing.T) {
	d := Default()
	want := Config{
		Listen:            DefaultListen(),
		MDNS:              ptr(true),
		Policy:            PolicyOpen,
		ApprovalTimeout:   Duration{2 * time.Minute},
		ReprovideInterval: Duration{12 * time.Hour},
		LogLevel:          "info",
		LogFormat:         "text",
		DHTMode:           "server",
	}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("Default() = %+v, want %+v", d, want)
	}
	if err := d.Validate(); err != nil {
		t.Fatalf("Default() is invalid: %v", err)
	}

	c := Config{Listen: []string{"/ip4/127.0.0.1/tcp/1"}, MDNS: ptr(false), LogLevel: "error"}
	got := c.WithDefaults()
	if got.MDNSEnabled() || got.LogLevel != "error" || got.Policy != PolicyOpen || len(got.Listen) != 1 {
		t.Fatalf("WithDefaults overrode set fields or missed empty ones: %+v", got)
	}
	got.Listen[0] = "changed"
	if c.Listen[0] == "changed" {
		t.Fatal("WithDefaults shares the Listen slice with its receiver")
	}
}

func TestMDNSEnabled(t *testing.T) {
	for _, tt := range []struct {
		mdns *bool
		want bool
	}{{nil, true}, {ptr(true), true}, {ptr(false), false}} {
		if got := (Config{MDNS: tt.mdns}).MDNSEnabled(); got != tt.want {
			t.Errorf("MDNSEnabled with %v = %v, want %v", tt.mdns, got, tt.want)
		}
	}
}

// normalize maps every way of saying "empty" to one value, so configs can be
// compared by meaning.
func normalize(c Config) Config {
	for _, s := range []*[]string{&c.Listen, &c.Bootstrap, &c.Allow} {
		if len(*s) == 0 {
			*s = nil
		}
	}
	return c
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("lisen = 1\n"))
	f.Add([]byte("listen = [\"/ip4/0.0.0.0/tcp/0\"]\nmdns = false\npolicy = \"manual\"\napproval_timeout = \"1m\"\n"))
	f.Add([]byte("bootstrap = [\"/ip4/1.2.3.4/tcp/1/p2p/" + testPeer + "\"]\nallow = [\"" + testPeer + "\"]\n"))
	f.Add([]byte("approval_timeout = 5\n[x]\ny = {z = [1, 2]}\n"))
	f.Add([]byte("log_level = \"debug\"\nlog_format = 'json'\nreprovide_interval = \"-1h\"\n"))
	if b, err := Marshal(Default()); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.toml")
		if err != nil {
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") || !strings.HasPrefix(msg, "config fuzz.toml") {
				t.Fatalf("bad error message %q", msg)
			}
			return
		}
		// What parses must survive the trip through the file Write stores.
		b, err := Marshal(c)
		if err != nil {
			t.Fatalf("Marshal of a parsed config: %v", err)
		}
		again, err := Parse(b, "fuzz.toml")
		if err != nil {
			t.Fatalf("Parse of Marshal output: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(normalize(again), normalize(c)) {
			t.Fatalf("round trip changed the config: %+v became %+v", c, again)
		}
	})
}
