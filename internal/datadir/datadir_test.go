package datadir

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pullnet/pullnet/internal/config"
)

func TestOpenFreshDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "data")

	d, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if !d.Created() {
		t.Error("Created() = false on a fresh directory")
	}
	if d.Path() != dir {
		t.Errorf("Path() = %q, want %q", d.Path(), dir)
	}
	if d.Key() == nil || d.Key().Type() != crypto.Ed25519 {
		t.Fatalf("Key() = %v, want an Ed25519 key", d.Key())
	}
	if id, err := peer.IDFromPrivateKey(d.Key()); err != nil || id != d.PeerID() {
		t.Fatalf("PeerID() = %s, want %s (%v)", d.PeerID(), id, err)
	}

	for path, want := range map[string]os.FileMode{dir: 0o700, d.KeyPath(): 0o600, d.ConfigPath(): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if runtime.GOOS != "windows" && fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
	c, err := config.Load(d.ConfigPath())
	if err != nil {
		t.Fatalf("the written config does not load: %v", err)
	}
	if !reflect.DeepEqual(c, config.Config{}) {
		t.Errorf("the written config sets values: %+v", c)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("fresh data directory holds %d entries, want identity.key and config.toml", len(entries))
	}

	for name, got := range map[string]string{
		"ConfigPath": d.ConfigPath(),
		"SocketPath": d.SocketPath(),
		"StorePath":  d.StorePath(),
		"KeyPath":    d.KeyPath(),
	} {
		if filepath.Dir(got) != dir {
			t.Errorf("%s() = %q, not inside %q", name, got, dir)
		}
	}
	if filepath.Base(d.SocketPath()) != "pulld.sock" || filepath.Base(d.StorePath()) != "store" {
		t.Errorf("SocketPath, StorePath = %q, %q", d.SocketPath(), d.StorePath())
	}
}

func TestOpenStablePeerID(t *testing.T) {
	dir := t.TempDir()
	first, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A user's edit of config.toml must survive reopening.
	if err := os.WriteFile(first.ConfigPath(), []byte("policy = \"manual\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	second, err := Open(dir)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	if second.Created() {
		t.Error("Created() = true on the second Open")
	}
	if second.PeerID() != first.PeerID() {
		t.Errorf("peer ID changed across Opens: %s then %s", first.PeerID(), second.PeerID())
	}
	if !second.Key().Equals(first.Key()) {
		t.Error("key changed across Opens")
	}
	c, err := config.Load(second.ConfigPath())
	if err != nil || c.Policy != config.PolicyManual {
		t.Errorf("config after reopening: %+v, %v; want the user's policy kept", c, err)
	}
}

func TestOpenConcurrentFreshDir(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	ids := make([]peer.ID, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			d, err := Open(dir)
			errs[i] = err
			if err == nil {
				ids[i] = d.PeerID()
			}
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Open %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("concurrent Opens disagree on the identity: %s and %s", ids[0], ids[i])
		}
	}
}

func TestOpenAcceptsDirWithOnlyConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte("log_level = \"debug\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := Open(dir)
	if err != nil {
		t.Fatalf("Open of a directory with a prepared config: %v", err)
	}
	if !d.Created() {
		t.Error("Created() = false, want a key generated")
	}
	c, err := config.Load(d.ConfigPath())
	if err != nil || c.LogLevel != "debug" {
		t.Errorf("prepared config replaced: %+v, %v", c, err)
	}
}

func TestOpenErrors(t *testing.T) {
	goodKey := func(t *testing.T, dir string) {
		if _, err := Open(dir); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		// setup prepares dir, which exists, and returns the path to Open.
		setup func(t *testing.T, dir string) string
		// want lists substrings of the error; "DIR" and "KEY" stand for the
		// directory and the key file.
		want []string
	}{
		{
			name: "foreign directory",
			setup: func(t *testing.T, dir string) string {
				if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
					t.Fatal(err)
				}
				return dir
			},
			want: []string{"DIR is not a pullnet data directory (no identity.key); choose an empty or new directory"},
		},
		{
			name: "corrupt key",
			setup: func(t *testing.T, dir string) string {
				goodKey(t, dir)
				if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte("not a key"), 0o600); err != nil {
					t.Fatal(err)
				}
				return dir
			},
			want: []string{"identity key KEY is corrupt"},
		},
		{
			name: "empty key",
			setup: func(t *testing.T, dir string) string {
				goodKey(t, dir)
				if err := os.Truncate(filepath.Join(dir, KeyFile), 0); err != nil {
					t.Fatal(err)
				}
				return dir
			},
			want: []string{"identity key KEY is corrupt"},
		},
		{
			name: "loose key permissions",
			setup: func(t *testing.T, dir string) string {
				if runtime.GOOS == "windows" {
					t.Skip("no mode bits on windows")
				}
				goodKey(t, dir)
				if err := os.Chmod(filepath.Join(dir, KeyFile), 0o644); err != nil {
					t.Fatal(err)
				}
				return dir
			},
			want: []string{"identity key KEY is readable by group or others (mode 0644)", "chmod 600 KEY"},
		},
		{
			name: "data path is a file",
			setup: func(t *testing.T, dir string) string {
				if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o600); err != nil {
					t.Fatal(err)
				}
				return filepath.Join(dir, "file")
			},
			want: []string{"DIR/file is not a directory"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := Open(tt.setup(t, dir))
			if err == nil {
				t.Fatal("Open succeeded")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans several lines: %q", msg)
			}
			r := strings.NewReplacer("DIR", dir, "KEY", filepath.Join(dir, KeyFile))
			for _, w := range tt.want {
				if w = r.Replace(w); !strings.Contains(msg, w) {
					t.Errorf("error %q\ndoes not contain %q", msg, w)
				}
			}
		})
	}
}

func TestDefault(t *testing.T) {
	t.Setenv(EnvVar, "/srv/pullnet")
	if got := Default(); got != "/srv/pullnet" {
		t.Errorf("Default() with $%s set = %q", EnvVar, got)
	}
	t.Setenv(EnvVar, "")
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip("no home directory")
	}
	if got, want := Default(), filepath.Join(home, ".pullnet"); got != want {
		t.Errorf("Default() = %q, want %q", got, want)
	}
}
