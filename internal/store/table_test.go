package store

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
)

type session struct {
	ID       string `json:"id"`
	Peer     string `json:"peer"`
	Envelope []byte `json:"envelope"`
}

// backends runs a test against every datastore the node uses.
func backends(t *testing.T, fn func(t *testing.T, d ds.Datastore)) {
	t.Run("map", func(t *testing.T) {
		fn(t, dssync.MutexWrap(ds.NewMapDatastore()))
	})
	t.Run("pebble", func(t *testing.T) {
		d, err := OpenPebble(filepath.Join(t.TempDir(), "store"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := d.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		fn(t, d)
	})
}

func TestTable(t *testing.T) {
	backends(t, func(t *testing.T, d ds.Datastore) {
		ctx := context.Background()
		sessions := Table[session]{DS: d, Prefix: ds.NewKey("/sessions")}

		if got, err := sessions.List(ctx); err != nil || len(got) != 0 {
			t.Fatalf("List of an empty table = %v, %v", got, err)
		}
		if _, err := sessions.Get(ctx, "none"); !errors.Is(err, ds.ErrNotFound) {
			t.Fatalf("Get of a missing key: %v, want ds.ErrNotFound", err)
		}

		// Keys that would nest or escape if used as path segments, and a
		// key that is a prefix of another, to check ordering.
		keys := []string{"b", "a/b", "..", "a", "ab", "\x00", "ü"}
		for _, k := range keys {
			if err := sessions.Put(ctx, k, session{ID: k, Envelope: []byte{0, 1, 2}}); err != nil {
				t.Fatalf("Put %q: %v", k, err)
			}
		}
		for _, k := range keys {
			got, err := sessions.Get(ctx, k)
			if err != nil || got.ID != k || !reflect.DeepEqual(got.Envelope, []byte{0, 1, 2}) {
				t.Fatalf("Get %q = %+v, %v", k, got, err)
			}
		}

		// Overwrite, then delete (twice: a missing key is fine).
		if err := sessions.Put(ctx, "a", session{ID: "a", Peer: "p2"}); err != nil {
			t.Fatal(err)
		}
		if got, err := sessions.Get(ctx, "a"); err != nil || got.Peer != "p2" {
			t.Fatalf("Get after overwrite = %+v, %v", got, err)
		}
		for range 2 {
			if err := sessions.Delete(ctx, "b"); err != nil {
				t.Fatalf("Delete: %v", err)
			}
		}
		if _, err := sessions.Get(ctx, "b"); !errors.Is(err, ds.ErrNotFound) {
			t.Fatalf("Get after Delete: %v, want ds.ErrNotFound", err)
		}

		// Neighbouring and nested tables must not leak into this one.
		other := Table[int]{DS: d, Prefix: ds.NewKey("/sessionsx")}
		nested := Table[int]{DS: d, Prefix: ds.NewKey("/sessions/nested")}
		if err := other.Put(ctx, "a", 1); err != nil {
			t.Fatal(err)
		}
		if err := nested.Put(ctx, "a", 2); err != nil {
			t.Fatal(err)
		}

		got, err := sessions.List(ctx)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		var ids []string
		for _, s := range got {
			ids = append(ids, s.ID)
		}
		want := []string{"\x00", "..", "a", "a/b", "ab", "ü"} // byte order
		if !reflect.DeepEqual(ids, want) {
			t.Fatalf("List IDs = %q, want %q", ids, want)
		}

		var seen []string
		stop := errors.New("stop")
		err = sessions.Each(ctx, func(key string, s session) error {
			if key != s.ID {
				t.Errorf("Each key %q with value %+v", key, s)
			}
			seen = append(seen, key)
			if len(seen) == 2 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || len(seen) != 2 {
			t.Fatalf("Each did not stop at the callback's error: %v after %q", err, seen)
		}

		if v, err := nested.List(ctx); err != nil || !reflect.DeepEqual(v, []int{2}) {
			t.Fatalf("nested List = %v, %v", v, err)
		}
	})
}

func TestTableErrors(t *testing.T) {
	backends(t, func(t *testing.T, d ds.Datastore) {
		ctx := context.Background()
		tbl := Table[map[string]int]{DS: d, Prefix: ds.NewKey("/t")}

		if err := tbl.Put(ctx, "", nil); err == nil {
			t.Error("Put with an empty key succeeded")
		}
		if _, err := tbl.Get(ctx, ""); err == nil {
			t.Error("Get with an empty key succeeded")
		}

		// A value of another type under the prefix: Get and List report it.
		if err := (Table[string]{DS: d, Prefix: ds.NewKey("/t")}).Put(ctx, "k", "text"); err != nil {
			t.Fatal(err)
		}
		if _, err := tbl.Get(ctx, "k"); err == nil {
			t.Error("Get decoded a string into a map")
		}
		if _, err := tbl.List(ctx); err == nil {
			t.Error("List decoded a string into a map")
		}

		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := tbl.List(cctx); !errors.Is(err, context.Canceled) {
			t.Errorf("List with a cancelled context: %v", err)
		}
	})
}

func TestTableRootPrefix(t *testing.T) {
	ctx := context.Background()
	d := dssync.MutexWrap(ds.NewMapDatastore())
	tbl := Table[int]{DS: d} // empty Prefix: the root
	if err := tbl.Put(ctx, "x", 7); err != nil {
		t.Fatal(err)
	}
	if v, err := tbl.List(ctx); err != nil || !reflect.DeepEqual(v, []int{7}) {
		t.Fatalf("List = %v, %v", v, err)
	}
}
