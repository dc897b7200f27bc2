package signed

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func wantKey(t *testing.T) (crypto.PrivKey, peer.ID) {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	return k, id
}

func TestWantSealOpen(t *testing.T) {
	key, owner := wantKey(t)
	now := time.Now()
	rec, err := SealWant(key, Want{Handle: "h1", Query: "tag:gpu   kind:compute", Description: "a week",
		Created: now, Expires: now.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Want.Owner != owner || rec.Want.ID != NewWantID(owner, "h1") || rec.Want.Query != "tag:gpu kind:compute" {
		t.Fatalf("sealed %+v", rec.Want)
	}
	got, err := OpenWant(rec.Envelope, now)
	if err != nil {
		t.Fatal(err)
	}
	if got.Want != rec.Want {
		t.Fatalf("opened %+v, sealed %+v", got.Want, rec.Want)
	}

	// Tampered: any byte of the query changed breaks the signature.
	bad := bytes.Clone(rec.Envelope)
	i := bytes.Index(bad, []byte("kind:compute"))
	bad[i] = 'm'
	if _, err := OpenWant(bad, now); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered: %v", err)
	}
	// Expired, and created in the future.
	if _, err := OpenWant(rec.Envelope, now.Add(25*time.Hour)); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
	if _, err := OpenWant(rec.Envelope, now.Add(-time.Hour)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("from the future: %v", err)
	}
	// A resource envelope is not a want.
	res, err := SealResource(key, sample())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenWant(res.Envelope, now); err == nil {
		t.Fatal("a resource opened as a want")
	}
	if _, err := OpenWant(make([]byte, MaxWantEnvelopeSize+1), now); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("huge envelope: %v", err)
	}
}

func TestSealWantLimits(t *testing.T) {
	key, _ := wantKey(t)
	now := time.Now()
	for name, w := range map[string]Want{
		"no handle":     {Query: "tag:gpu", Created: now, Expires: now.Add(time.Hour)},
		"bad query":     {Handle: "h", Query: `"open`, Created: now, Expires: now.Add(time.Hour)},
		"huge query":    {Handle: "h", Query: "tag:" + strings.Repeat("a", 5000), Created: now, Expires: now.Add(time.Hour)},
		"not indexable": {Handle: "h", Query: "os!=windows", Created: now, Expires: now.Add(time.Hour)},
		"huge desc":     {Handle: "h", Query: "tag:gpu", Description: strings.Repeat("d", 2000), Created: now, Expires: now.Add(time.Hour)},
		"too long":      {Handle: "h", Query: "tag:gpu", Created: now, Expires: now.Add(31 * 24 * time.Hour)},
		"backwards":     {Handle: "h", Query: "tag:gpu", Created: now, Expires: now.Add(-time.Hour)},
	} {
		if _, err := SealWant(key, w); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzOpenWant: whatever bytes a peer serves as a want, opening fails
// cleanly or yields a want its signer owns.
func FuzzOpenWant(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("not an envelope"))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := OpenWant(b, time.Now())
		if err == nil && (w.Want.ID == "" || w.Want.ID != NewWantID(w.Want.Owner, w.Want.Handle)) {
			t.Fatalf("opened a want whose ID its signer does not own: %+v", w.Want)
		}
	})
}
