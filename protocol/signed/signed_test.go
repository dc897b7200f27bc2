package signed

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"

	"github.com/pullnet/pullnet/resource"
)

func newKey(t testing.TB) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sample() resource.Resource {
	return resource.Resource{
		Handle: "gpu-box", Kind: "Compute", Name: " GPU box ",
		Description: "Two A100s for stable diffusion",
		Tags:        []string{"GPU", "cuda", "gpu"},
		Attrs:       map[string]string{"gpu.count": "2"},
		Access:      resource.Access{Type: "url", Value: "https://example.org"},
		Seq:         1,
		Expires:     time.Unix(2000000000, 0).UTC(),
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	key := newKey(t)
	rec, err := SealResource(key, sample())
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenResource(rec.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	if got.Owner != rec.Owner || got.Resource.ID != rec.Resource.ID {
		t.Fatalf("owner/id changed: %v %v", got.Resource, rec.Resource)
	}
	r := got.Resource
	if r.Kind != "compute" || r.Name != "GPU box" || strings.Join(r.Tags, ",") != "cuda,gpu" || r.Attrs["gpu.count"] != "2" || !r.Expires.Equal(sample().Expires) {
		t.Fatalf("resource not preserved: %+v", r)
	}
}

func TestIDStableAcrossEdits(t *testing.T) {
	key := newKey(t)
	a, err := SealResource(key, sample())
	if err != nil {
		t.Fatal(err)
	}
	edited := sample()
	edited.Name = "renamed"
	edited.Tags = []string{"other"}
	edited.Seq = 2
	b, err := SealResource(key, edited)
	if err != nil {
		t.Fatal(err)
	}
	if a.Resource.ID != b.Resource.ID {
		t.Fatalf("ID changed across edits: %s -> %s", a.Resource.ID, b.Resource.ID)
	}
	other, err := SealResource(newKey(t), sample())
	if err != nil {
		t.Fatal(err)
	}
	if other.Resource.ID == a.Resource.ID {
		t.Fatal("two owners with the same handle share an ID")
	}
}

// A resource that names one owner but is signed by another key must not open:
// otherwise anyone could publish under anyone's IDs.
func TestForeignSignatureRejected(t *testing.T) {
	owner, mallory := newKey(t), newKey(t)
	ownerID, _ := peer.IDFromPrivateKey(owner)
	r := sample()
	r.Normalize()
	rec := &resourceRecord{msg: *ResourceToWire(&r, ownerID)}
	env, err := record.Seal(rec, mallory)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := env.Marshal()
	if _, err := OpenResource(b); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("got %v, want ErrNotOwner", err)
	}
}

func TestTamperedEnvelopeRejected(t *testing.T) {
	rec, err := SealResource(newKey(t), sample())
	if err != nil {
		t.Fatal(err)
	}
	b := append([]byte(nil), rec.Envelope...)
	i := strings.Index(string(b), "GPU box")
	if i < 0 {
		t.Fatal("name not found in envelope")
	}
	b[i] = 'X'
	if _, err := OpenResource(b); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("got %v, want ErrBadSignature", err)
	}
}

func TestInvalidResourceRejected(t *testing.T) {
	key := newKey(t)
	for name, mut := range map[string]func(*resource.Resource){
		"no kind":     func(r *resource.Resource) { r.Kind = "" },
		"no name":     func(r *resource.Resource) { r.Name = "" },
		"bad access":  func(r *resource.Resource) { r.Access.Type = "ftp" },
		"long name":   func(r *resource.Resource) { r.Name = strings.Repeat("x", resource.MaxNameLen+1) },
		"bad derived": func(r *resource.Resource) { r.DerivedFrom = []string{"not-a-cid"} },
		"no handle":   func(r *resource.Resource) { r.Handle = "" },
	} {
		r := sample()
		mut(&r)
		if _, err := SealResource(key, r); err == nil {
			t.Errorf("%s: sealed an invalid resource", name)
		}
	}
	// The same checks hold on the receiving side, for a sender that skips them.
	ownerID, _ := peer.IDFromPrivateKey(key)
	r := sample()
	r.Kind = "Not A Kind!"
	env, err := record.Seal(&resourceRecord{msg: *ResourceToWire(&r, ownerID)}, key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := env.Marshal()
	if _, err := OpenResource(b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("got %v, want ErrMalformed", err)
	}
}

func TestOversizeRejected(t *testing.T) {
	if _, err := OpenResource(make([]byte, MaxEnvelopeSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
}

func TestReceiptRoundTrip(t *testing.T) {
	prov, cons := newKey(t), newKey(t)
	pid, _ := peer.IDFromPrivateKey(prov)
	cid, _ := peer.IDFromPrivateKey(cons)
	rc := Receipt{Session: "s1", ResourceID: "r1", Provider: pid, Consumer: cid, Issued: time.Unix(1700000000, 0).UTC(), Expires: time.Unix(1700086400, 0).UTC()}
	b, err := SealReceipt(prov, rc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenReceipt(b)
	if err != nil {
		t.Fatal(err)
	}
	if got != rc {
		t.Fatalf("got %+v, want %+v", got, rc)
	}
	if _, err := SealReceipt(cons, rc); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("consumer sealed a provider's receipt: %v", err)
	}
	// A resource envelope is not a receipt.
	res, _ := SealResource(prov, sample())
	if _, err := OpenReceipt(res.Envelope); err == nil {
		t.Fatal("opened a resource envelope as a receipt")
	}
}

func FuzzOpenResource(f *testing.F) {
	key, _, _ := crypto.GenerateEd25519Key(nil)
	rec, _ := SealResource(key, sample())
	f.Add(rec.Envelope)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := OpenResource(b)
		if err != nil {
			return
		}
		// Whatever opens must be a valid resource owned by its signer.
		if got.Resource.Validate() != nil || got.Resource.ID != resource.NewID(got.Owner.String(), got.Resource.Handle) {
			t.Fatalf("opened an invalid record: %+v", got.Resource)
		}
		again := ResourceFromWire(ResourceToWire(&got.Resource, got.Owner))
		if again.Name != got.Resource.Name || again.Seq != got.Resource.Seq {
			t.Fatalf("wire round trip changed the resource")
		}
	})
}

func FuzzOpenReceipt(f *testing.F) {
	key, _, _ := crypto.GenerateEd25519Key(nil)
	pid, _ := peer.IDFromPrivateKey(key)
	b, _ := SealReceipt(key, Receipt{Session: "s", ResourceID: "r", Provider: pid, Consumer: pid, Issued: time.Unix(1, 0)})
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = OpenReceipt(b)
	})
}
