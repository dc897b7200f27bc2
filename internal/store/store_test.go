package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ds "github.com/ipfs/go-datastore"
)

func TestPebbleSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "store")

	d, err := OpenPebble(dir)
	if err != nil {
		t.Fatalf("OpenPebble: %v", err)
	}
	if err := d.Put(ctx, ds.NewKey("/plain"), []byte("v1")); err != nil {
		t.Fatal(err)
	}
	b, err := d.Batch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := b.Put(ctx, ds.NewKey(fmt.Sprintf("/batch/%d", i)), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	tbl := Table[string]{DS: d, Prefix: ds.NewKey("/t")}
	if err := tbl.Put(ctx, "k", "value"); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("store directory: %v, %v; want mode 0700", fi.Mode().Perm(), err)
	}

	d, err = OpenPebble(dir)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer d.Close()
	if v, err := d.Get(ctx, ds.NewKey("/plain")); err != nil || string(v) != "v1" {
		t.Errorf("/plain after reopen = %q, %v", v, err)
	}
	for i := range 3 {
		if v, err := d.Get(ctx, ds.NewKey(fmt.Sprintf("/batch/%d", i))); err != nil || len(v) != 1 || v[0] != byte(i) {
			t.Errorf("/batch/%d after reopen = %v, %v", i, v, err)
		}
	}
	tbl.DS = d
	if v, err := tbl.Get(ctx, "k"); err != nil || v != "value" {
		t.Errorf("table entry after reopen = %q, %v", v, err)
	}
}

func TestPebbleInUseInProcess(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenPebble(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	_, err = OpenPebble(dir)
	checkInUse(t, err, dir)
}

// helperEnv tells a re-executed test binary to act as a second pulld.
const helperEnv = "PULLNET_STORE_TEST_HELPER_DIR"

// TestPebbleInUseOtherProcess holds a store open while another process, as a
// second daemon would, tries to open it. Within one process pebble reports
// the conflict differently (it never reaches the file lock), so this path
// needs a real second process.
func TestPebbleInUseOtherProcess(t *testing.T) {
	if dir := os.Getenv(helperEnv); dir != "" {
		_, err := OpenPebble(dir)
		if err == nil {
			fmt.Print("opened")
			os.Exit(0)
		}
		fmt.Print(err)
		if errors.Is(err, ErrInUse) {
			os.Exit(3)
		}
		os.Exit(4)
	}

	dir := t.TempDir()
	d, err := OpenPebble(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestPebbleInUseOtherProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("second process: %v, output %q; want an ErrInUse failure", err, out)
	}
	if want := "store " + dir + " is in use by another pulld"; string(out) != want {
		t.Errorf("second process error %q, want %q", out, want)
	}
}

func checkInUse(t *testing.T, err error, dir string) {
	t.Helper()
	if err == nil {
		t.Fatal("second OpenPebble of the same store succeeded")
	}
	if !errors.Is(err, ErrInUse) {
		t.Errorf("error %v does not match ErrInUse", err)
	}
	if want := "store " + dir + " is in use by another pulld"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestPebbleCorrupt(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenPebble(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put(context.Background(), ds.NewKey("/a"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	manifests, err := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
	if err != nil || len(manifests) == 0 {
		t.Fatalf("no manifest to corrupt: %v", err)
	}
	for _, m := range manifests {
		if err := os.WriteFile(m, []byte("this is not a pebble manifest"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	_, err = OpenPebble(dir)
	if err == nil {
		t.Fatal("OpenPebble of a corrupt store succeeded")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "store "+dir+" is corrupt: ") || strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error %q, want one line starting %q", msg, "store "+dir+" is corrupt: ")
	}
}

func TestPebbleNotADirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := OpenPebble(path)
	if err == nil || !strings.HasPrefix(err.Error(), "store "+path+": ") || strings.Count(err.Error(), path) != 1 {
		t.Fatalf("OpenPebble of a file: %v", err)
	}
}
