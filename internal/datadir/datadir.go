// Package datadir opens pulld's data directory: the one place that holds
// everything a node must not forget.
//
// Layout:
//
//	DATA/identity.key  the node's libp2p private key (mode 0600); its peer ID
//	DATA/config.toml   the configuration file, see package config
//	DATA/pulld.sock    the control API's unix socket
//	DATA/store/        the pebble datastore, see package store
//
// Open creates a missing directory and fills in what a new node needs (a fresh
// Ed25519 identity, a commented default config), but refuses to adopt a
// non-empty directory that is not already a pullnet data directory, so that a
// mistyped path never scatters files into someone's home or project folder.
package datadir

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pullnet/pullnet/internal/config"
)

// Names of the entries of a data directory.
const (
	KeyFile    = "identity.key"
	ConfigFile = "config.toml"
	SocketFile = "pulld.sock"
	StoreDir   = "store"
)

// EnvVar names the environment variable that overrides the default data
// directory.
const EnvVar = "PULLNET_DATA"

// Default returns the data directory to use when none is given: $PULLNET_DATA
// if set, else ~/.pullnet. If the home directory is unknown it falls back to
// ".pullnet" in the working directory.
func Default() string {
	if d := os.Getenv(EnvVar); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".pullnet"
	}
	return filepath.Join(home, ".pullnet")
}

// Dir is an open data directory with its identity loaded.
type Dir struct {
	path    string
	key     crypto.PrivKey
	id      peer.ID
	created bool
}

// Open opens the data directory dir, creating it (mode 0700) if it does not
// exist. It loads the identity key, generating and storing a new Ed25519 key
// if the directory has none, and writes a default config.toml if there is
// none. Errors are one line and name the file at fault.
//
// Open takes no lock: two processes may open the same directory. The store
// is what refuses a second daemon (see store.OpenPebble).
func Open(dir string) (*Dir, error) {
	if dir == "" {
		return nil, errors.New("data directory path is empty")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	d := &Dir{path: abs}

	if err := d.prepare(); err != nil {
		return nil, err
	}
	if err := d.loadOrCreateKey(); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(d.ConfigPath()); errors.Is(err, fs.ErrNotExist) {
		// The zero Config is written as a fully commented-out file: it
		// documents every option but pins none, so the node keeps following
		// the defaults of whichever pulld runs it.
		if err := config.Write(d.ConfigPath(), config.Config{}); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", d.path, err)
	}
	return d, nil
}

// prepare creates the directory if needed and checks that an existing one is
// ours or empty.
func (d *Dir) prepare() error {
	fi, err := os.Stat(d.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(d.path, 0o700); err != nil {
			return fmt.Errorf("create data directory: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("data directory: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("data directory %s is not a directory", d.path)
	}

	names, err := readDirNames(d.path)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	foreign := false
	for _, name := range names {
		switch {
		case name == KeyFile || name == ConfigFile:
			return nil
		case strings.HasPrefix(name, "."+KeyFile+".tmp"), strings.HasPrefix(name, "."+ConfigFile+".tmp"):
			// A concurrent Open is creating the directory's first files.
		default:
			foreign = true
		}
	}
	if foreign {
		return fmt.Errorf("%s is not a pullnet data directory (no %s); choose an empty or new directory", d.path, KeyFile)
	}
	return nil
}

// readDirNames lists dir without sorting or stat-ing its entries.
func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

func (d *Dir) loadOrCreateKey() error {
	path := d.KeyPath()
	key, err := readKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, d.created, err = createKey(path)
	}
	if err != nil {
		return err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return fmt.Errorf("identity key %s: derive peer ID: %w", path, err)
	}
	d.key, d.id = key, id
	return nil
}

// readKey loads the private key at path, refusing one that others can read:
// whoever reads it can impersonate the node.
func readKey(path string) (crypto.PrivKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("identity key: %w", err)
	}
	// Windows has no such mode bits; its ACLs are out of our reach here.
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("identity key %s is readable by group or others (mode %04o); fix it with: chmod 600 %s", path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("identity key: %w", err)
	}
	key, err := crypto.UnmarshalPrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("identity key %s is corrupt (%v); restore it from a backup, or move it away to start over with a new peer ID", path, err)
	}
	return key, nil
}

// createKey generates an Ed25519 identity and stores it at path without ever
// replacing an existing file: if another process created the key first, its
// key wins and is returned, so both end up with the same peer ID.
func createKey(path string) (key crypto.PrivKey, created bool, err error) {
	key, _, err = crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("generate identity key: %w", err)
	}
	data, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		return nil, false, fmt.Errorf("encode identity key: %w", err)
	}
	switch err := writeFileExclusive(path, data, 0o600); {
	case errors.Is(err, fs.ErrExist):
		key, err := readKey(path)
		return key, false, err
	case err != nil:
		return nil, false, fmt.Errorf("write identity key: %w", err)
	}
	return key, true, nil
}

// writeFileExclusive creates path with data, durably and atomically (a crash
// leaves no file or the whole file, never a torn key), failing with an error
// matching fs.ErrExist if path already exists. It writes a synced temporary
// file and hard-links it into place, because link, unlike rename, never
// replaces its target.
func writeFileExclusive(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		// A second Close is harmless, and removing the temporary name leaves
		// the linked one in place.
		_ = f.Close()
		_ = os.Remove(tmp)
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
	if err = os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		// Some filesystems (FAT, some network and FUSE mounts) have no hard
		// links. Rename is atomic too, but could replace a key created in
		// the instant since the check below.
		if _, serr := os.Lstat(path); serr == nil {
			return fs.ErrExist
		}
		if err = os.Rename(tmp, path); err != nil {
			return err
		}
	}
	return syncDir(dir)
}

// syncDir makes a new directory entry in dir durable.
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

// Path returns the absolute path of the data directory.
func (d *Dir) Path() string { return d.path }

// Key returns the node's private key.
func (d *Dir) Key() crypto.PrivKey { return d.key }

// PeerID returns the peer ID derived from Key.
func (d *Dir) PeerID() peer.ID { return d.id }

// Created reports whether this Open generated the identity key, that is,
// whether this is a new node.
func (d *Dir) Created() bool { return d.created }

// KeyPath returns the path of the identity key file.
func (d *Dir) KeyPath() string { return filepath.Join(d.path, KeyFile) }

// ConfigPath returns the path of config.toml.
func (d *Dir) ConfigPath() string { return filepath.Join(d.path, ConfigFile) }

// SocketPath returns the path of the control API's unix socket.
func (d *Dir) SocketPath() string { return filepath.Join(d.path, SocketFile) }

// StorePath returns the directory of the node's datastore.
func (d *Dir) StorePath() string { return filepath.Join(d.path, StoreDir) }
