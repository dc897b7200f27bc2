// Package store persists a node's state on go-datastore: OpenPebble opens the
// durable on-disk datastore of a data directory, and Table stores typed
// values as JSON under a key prefix of any datastore, including the
// in-memory map datastore embedders and tests use.
package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	pebbleds "github.com/ipfs/go-ds-pebble"
)

// ErrInUse matches the error of OpenPebble when another process, or another
// open datastore of this process, holds the store.
var ErrInUse = errors.New("in use by another pulld")

// OpenPebble opens, creating if needed, the pebble datastore in the directory
// path. Every write is synced to disk before it returns (pebble.Sync), so a
// change acknowledged to a user survives a crash or kill -9.
//
// Errors are one line naming path. A store locked by another process gives
// an error matching ErrInUse, "store PATH is in use by another pulld".
func OpenPebble(path string) (*pebbleds.Datastore, error) {
	// Create the directory ourselves: pebble would make it 0755, readable by
	// every local user.
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("store %s: %w", path, unwrapPath(err))
	}
	d, err := pebbleds.NewDatastore(path, pebbleds.WithPebbleWriteOptions(pebble.Sync))
	switch {
	case err == nil:
		return d, nil
	case isLocked(err):
		return nil, &openError{"store " + path + " is " + ErrInUse.Error(), ErrInUse}
	case pebble.IsCorruptionError(err):
		return nil, &openError{"store " + path + " is corrupt: " + oneLine(err), err}
	default:
		return nil, &openError{"store " + path + ": " + oneLine(err), err}
	}
}

// openError keeps OpenPebble's message on one line while errors.Is and
// errors.As still reach the cause.
type openError struct {
	msg string
	err error
}

func (e *openError) Error() string { return e.msg }
func (e *openError) Unwrap() error { return e.err }

// isLocked reports whether err comes from pebble failing to take the LOCK
// file of its directory. pebble has no sentinel error for this, so it is
// recognised by what its vfs returns: fcntl's EAGAIN or EACCES (as a bare
// errno, unlike a permission problem opening the file, which comes wrapped in
// a PathError) when another process holds the lock, and a plain message when
// this process does.
func isLocked(err error) bool {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return false
	}
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) {
		return true
	}
	return strings.Contains(err.Error(), "lock held by current process")
}

// unwrapPath drops the PathError layer whose path our message already names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}

// oneLine flattens a multi-line error message, and drops go-ds-pebble's
// generic prefix, since our own message names the store.
func oneLine(err error) string {
	s := strings.TrimPrefix(err.Error(), "failed to open pebble database: ")
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }), " ")
}
