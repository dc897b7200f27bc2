package wants

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/libp2p/go-msgio/pbio"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"

	wirev1 "github.com/pullnet/pullnet/proto/gen/pullnet/wire/v1"
	"github.com/pullnet/pullnet/protocol/signed"
)

func delimited(t testing.TB, m proto.Message) []byte {
	var b bytes.Buffer
	if err := pbio.NewDelimitedWriter(&b).WriteMsg(m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestReadRequestCaps(t *testing.T) {
	ok := delimited(t, &wirev1.WantsRequest{Terms: []string{"tag:gpu", "kind:compute"}, Limit: 5})
	if req, err := readRequest(bytes.NewReader(ok)); err != nil || len(req.GetTerms()) != 2 {
		t.Fatalf("good request: %v %v", req, err)
	}
	for name, m := range map[string]*wirev1.WantsRequest{
		"oversized":     {Terms: []string{strings.Repeat("a", MaxRequestSize)}},
		"too many":      {Terms: make([]string, MaxTerms+1)},
		"term too long": {Terms: []string{strings.Repeat("a", MaxTermLen+1)}},
	} {
		if _, err := readRequest(bytes.NewReader(delimited(t, m))); err == nil {
			t.Errorf("%s request accepted", name)
		}
	}
	if _, err := readRequest(bytes.NewReader(binary.AppendUvarint(nil, 10))); err == nil {
		t.Fatal("truncated request accepted")
	}
}

// FuzzReadRequest: whatever bytes a peer sends, decoding fails cleanly or
// yields a request within every cap.
func FuzzReadRequest(f *testing.F) {
	f.Add(delimited(f, &wirev1.WantsRequest{Terms: []string{"tag:gpu", "word:diffusion"}, Limit: 10}))
	f.Add([]byte{0x05, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add(binary.AppendUvarint(nil, 1<<40))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := readRequest(bytes.NewReader(b))
		if err != nil {
			return
		}
		if n := proto.Size(req); n > MaxRequestSize {
			t.Fatalf("decoded a %d-byte request past the %d cap", n, MaxRequestSize)
		}
		if len(req.GetTerms()) > MaxTerms {
			t.Fatalf("decoded %d terms", len(req.GetTerms()))
		}
		for _, term := range req.GetTerms() {
			if len(term) > MaxTermLen {
				t.Fatalf("decoded a %d-byte term", len(term))
			}
		}
	})
}

// rawWant seals a Want message as is, bypassing SealWant's checks: what a
// misbehaving peer could send.
type rawWant struct{ msg *wirev1.Want }

func (rawWant) Domain() string { return signed.WantDomain }
func (rawWant) Codec() []byte  { return []byte("/pullnet/want") }
func (r rawWant) MarshalRecord() ([]byte, error) {
	return proto.Marshal(r.msg)
}
func (r rawWant) UnmarshalRecord(b []byte) error { return proto.Unmarshal(b, r.msg) }

func sealRaw(t *testing.T, key crypto.PrivKey, m *wirev1.Want) []byte {
	t.Helper()
	env, err := record.Seal(rawWant{m}, key)
	if err != nil {
		t.Fatal(err)
	}
	b, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func seal(t *testing.T, key crypto.PrivKey, handle, q string, created, expires time.Time) []byte {
	t.Helper()
	rec, err := signed.SealWant(key, signed.Want{Handle: handle, Query: q, Created: created, Expires: expires})
	if err != nil {
		t.Fatal(err)
	}
	return rec.Envelope
}

func twoHosts(t *testing.T) (mocknet.Mocknet, host.Host, host.Host, crypto.PrivKey) {
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	var hosts []host.Host
	var keys []crypto.PrivKey
	for i := range 2 {
		k, _, _ := crypto.GenerateEd25519Key(nil)
		h, err := mn.AddPeer(k, ma.StringCast(fmt.Sprintf("/ip4/10.0.0.%d/tcp/4001", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		hosts, keys = append(hosts, h), append(keys, k)
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	if err := mn.ConnectAllButSelf(); err != nil {
		t.Fatal(err)
	}
	return mn, hosts[0], hosts[1], keys[1]
}

// TestFetchDropsBadWants: a peer that serves forged, tampered, replayed,
// expired, huge and too many wants has each kind dropped and counted.
func TestFetchDropsBadWants(t *testing.T) {
	_, asker, rogue, rogueKey := twoHosts(t)
	other, _, _ := crypto.GenerateEd25519Key(nil)
	now := time.Now()
	var envs [][]byte
	good := seal(t, rogueKey, "good", "kind:compute tag:gpu", now, now.Add(time.Hour))
	envs = append(envs, good, good) // the repeat counts as flood
	tampered := bytes.Clone(good)
	i := bytes.Index(tampered, []byte("tag:gpu"))
	tampered[i+4] = 'x'
	envs = append(envs, tampered)
	// Signed by the rogue but naming another owner: forged.
	otherID, _ := peer.IDFromPrivateKey(other)
	envs = append(envs, sealRaw(t, rogueKey, &wirev1.Want{Owner: []byte(otherID), Handle: "h", Query: "tag:gpu",
		CreatedUnix: now.Unix(), ExpiresUnix: now.Add(time.Hour).Unix()}))
	// Another owner's genuine want, relayed: a replay.
	envs = append(envs, seal(t, other, "theirs", "tag:gpu", now, now.Add(time.Hour)))
	// Expired.
	envs = append(envs, seal(t, rogueKey, "old", "tag:gpu", now.Add(-2*time.Hour), now.Add(-time.Hour)))
	// Huge query; a lifetime past the cap.
	rogueID := rogue.ID()
	envs = append(envs, sealRaw(t, rogueKey, &wirev1.Want{Owner: []byte(rogueID), Handle: "huge", Query: "tag:" + strings.Repeat("a", 4100),
		CreatedUnix: now.Unix(), ExpiresUnix: now.Add(time.Hour).Unix()}))
	envs = append(envs, sealRaw(t, rogueKey, &wirev1.Want{Owner: []byte(rogueID), Handle: "long", Query: "tag:gpu",
		CreatedUnix: now.Unix(), ExpiresUnix: now.Add(60 * 24 * time.Hour).Unix()}))
	// A flood: more distinct valid wants than one peer may hold.
	for i := range MaxWantsPerPeer + 5 {
		envs = append(envs, seal(t, rogueKey, fmt.Sprintf("flood-%d", i), "tag:gpu", now, now.Add(time.Hour)))
	}
	rogue.SetStreamHandler(ID, func(s network.Stream) {
		defer s.Close()
		if _, err := readRequest(s); err != nil {
			s.Reset()
			return
		}
		w := pbio.NewDelimitedWriter(s)
		for _, e := range envs {
			if err := w.WriteMsg(&wirev1.WantsResponse{Envelope: e}); err != nil {
				return
			}
		}
	})
	var st ClientStats
	recs, err := Fetch(context.Background(), asker, rogue.ID(), []string{"tag:gpu"}, time.Now, &st)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != MaxWantsPerPeer || recs[0].Want.Handle != "good" {
		t.Fatalf("kept %d wants, first %+v", len(recs), recs[0].Want)
	}
	// One repeat of the good want, and of the flood of MaxWantsPerPeer+5
	// the 6 past the cap (the good want took one place).
	if st.Forged.Load() != 2 || st.Replayed.Load() != 1 || st.Expired.Load() != 1 || st.Malformed.Load() != 2 ||
		st.Accepted.Load() != MaxWantsPerPeer || st.Flood.Load() != 7 {
		t.Fatalf("stats: forged %d replayed %d expired %d malformed %d accepted %d flood %d",
			st.Forged.Load(), st.Replayed.Load(), st.Expired.Load(), st.Malformed.Load(), st.Accepted.Load(), st.Flood.Load())
	}
}

type source [][]byte

func (s source) OwnWants(terms []string, limit int) [][]byte { return s[:min(len(s), limit)] }

// TestServiceRoundTrip: the service answers with its source's wants and
// drops a malformed request, counting it.
func TestServiceRoundTrip(t *testing.T) {
	_, asker, server, key := twoHosts(t)
	now := time.Now()
	svc := NewService(server, source{seal(t, key, "a", "tag:gpu", now, now.Add(time.Hour))}, slog.New(slog.DiscardHandler))
	defer svc.Close()
	var st ClientStats
	recs, err := Fetch(context.Background(), asker, server.ID(), []string{"tag:gpu"}, time.Now, &st)
	if err != nil || len(recs) != 1 || recs[0].Want.Query != "tag:gpu" {
		t.Fatalf("fetch: %v %+v", err, recs)
	}
	s, err := asker.NewStream(context.Background(), server.ID(), ID)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = s.Write(delimited(t, &wirev1.WantsRequest{Terms: make([]string, MaxTerms+1)}))
	_ = s.CloseWrite()
	_, _ = io.ReadAll(s)
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for svc.Stats.Malformed.Load() != 1 {
		select {
		case <-deadline:
			t.Fatalf("malformed = %d", svc.Stats.Malformed.Load())
		case <-tick.C:
		}
	}
	if svc.Stats.Served.Load() != 1 {
		t.Fatalf("served = %d", svc.Stats.Served.Load())
	}
}
