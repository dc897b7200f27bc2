package reputation

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/libp2p/go-msgio/pbio"
	"google.golang.org/protobuf/proto"

	"github.com/pullnet/pullnet/internal/ratings"
	wirev1 "github.com/pullnet/pullnet/proto/gen/pullnet/wire/v1"
	"github.com/pullnet/pullnet/protocol/announce"
	"github.com/pullnet/pullnet/protocol/signed"
	"github.com/pullnet/pullnet/protocol/streams"
)

// member is one peer of a test network: its host, gossip and book.
type member struct {
	h    host.Host
	ann  *announce.Service
	book *ratings.Book
	rep  *Service
}

func join(t *testing.T, ctx context.Context, h host.Host) *member {
	t.Helper()
	ann, err := announce.New(ctx, h, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	book, err := ratings.Open(ctx, ratings.Config{Store: dssync.MutexWrap(ds.NewMapDatastore())})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := New(h, ann.PubSub(), book, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rep.Close)
	return &member{h: h, ann: ann, book: book, rep: rep}
}

// rating makes cons's rating of a session with prov.
func rating(t *testing.T, provKey, consKey crypto.PrivKey, session string, score float64) signed.RatingRecord {
	t.Helper()
	prov, _ := peer.IDFromPrivateKey(provKey)
	cons, _ := peer.IDFromPrivateKey(consKey)
	now := time.Now()
	rc, err := signed.SealReceipt(provKey, signed.Receipt{Session: session, ResourceID: "r", Provider: prov, Consumer: cons, Issued: now.Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	r, err := signed.SealRating(consKey, rc, score, "", now)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func keyOf(h host.Host) crypto.PrivKey { return h.Peerstore().PrivKey(h.ID()) }

// poll calls ok every 10 ms until it holds or ctx ends.
func poll(t *testing.T, ctx context.Context, what string, ok func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within the deadline", what)
		case <-tick.C:
		}
	}
}

// TestGossipAcrossAChain: a rating published at one end of a chain of
// three reaches the other end's book, through the middle.
func TestGossipAcrossAChain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mn := mocknet.New()
	defer mn.Close()
	var ms []*member
	for range 3 {
		h, err := mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, join(t, ctx, h))
	}
	for i := range 2 {
		if _, err := mn.LinkPeers(ms[i].h.ID(), ms[i+1].h.ID()); err != nil {
			t.Fatal(err)
		}
		if _, err := mn.ConnectPeers(ms[i].h.ID(), ms[i+1].h.ID()); err != nil {
			t.Fatal(err)
		}
	}
	// Each side must have heard the other's subscription: gossipsub drops
	// a message to a peer whose own view is not yet in place.
	poll(t, ctx, "topic peers meet", func() bool {
		return ms[0].rep.Peers() == 1 && ms[1].rep.Peers() == 2 && ms[2].rep.Peers() == 1
	})
	// Until the first heartbeat grafts the mesh, the middle has no one to
	// forward to (gossipsub sends its own messages to all topic peers, but
	// forwards only along the mesh), so ratings are published once a
	// second until one reaches the far end.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	sent := 0
	for ms[2].book.Len() == 0 {
		sent++
		r := rating(t, keyOf(ms[1].h), keyOf(ms[0].h), fmt.Sprint("s", sent), -1) // 0 rates its session with 1
		if err := ms[0].rep.Publish(ctx, r); err != nil {
			t.Fatal(err)
		}
		if ms[0].book.Len() != sent {
			t.Fatal("publisher did not keep its own rating")
		}
		select {
		case <-ctx.Done():
			t.Fatal("no rating reached the far end")
		case <-tick.C:
		}
	}
	// With the mesh in place, every rating gets through.
	want := ms[2].book.Len() + 1
	if err := ms[0].rep.Publish(ctx, rating(t, keyOf(ms[1].h), keyOf(ms[0].h), "last", -1)); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "a rating reaches the far end", func() bool { return ms[2].book.Len() == want })
	t.Logf("the far end heard from the %d. rating on", sent)
	got, _ := ms[2].book.About(ctx, ms[1].h.ID(), 10)
	if len(got) == 0 || got[0].Score != -1 || got[0].Rater != ms[0].h.ID() {
		t.Fatalf("far end holds %+v", got)
	}
}

// TestBadRatingsRejectedAndSenderPenalised: whatever a peer gossips that
// does not verify is rejected, counted by reason, kept out of the book, and
// lowers the sender's gossipsub score.
func TestBadRatingsRejectedAndSenderPenalised(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mn, err := mocknet.FullMeshConnected(2)
	if err != nil {
		t.Fatal(err)
	}
	defer mn.Close()
	good, bad := mn.Hosts()[0], mn.Hosts()[1]
	m := join(t, ctx, good)
	raw, err := pubsub.NewGossipSub(ctx, bad) // no validation of its own
	if err != nil {
		t.Fatal(err)
	}
	topic, err := raw.Join(Topic)
	if err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "attacker sees the topic's peer", func() bool { return len(topic.ListPeers()) > 0 })

	provKey, _, _ := crypto.GenerateEd25519Key(nil)
	stranger, _, _ := crypto.GenerateEd25519Key(nil)
	honest := rating(t, provKey, keyOf(bad), "s1", 1)
	// A stranger re-signs the attacker's honest rating as its own rater.
	var notParty []byte
	{
		var msg wirev1.Rating
		msg.Receipt = honest.Rating.ReceiptEnvelope
		sid, _ := peer.IDFromPrivateKey(stranger)
		msg.Rater = []byte(sid)
		msg.Score = 100
		msg.CreatedUnixMs = time.Now().UnixMilli()
		env, err := sealRatingMsg(stranger, &msg)
		if err != nil {
			t.Fatal(err)
		}
		notParty = env
	}
	for _, b := range [][]byte{[]byte("garbage"), notParty, honest.Rating.ReceiptEnvelope} {
		if err := topic.Publish(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	poll(t, ctx, "penalty", func() bool { return m.ann.Score(bad.ID()) < 0 })
	poll(t, ctx, "rejections counted", func() bool {
		return m.rep.Stats.NotParty.Load() == 1 && m.rep.Stats.Forged.Load()+m.rep.Stats.Malformed.Load() == 2
	})
	if m.book.Len() != 0 {
		t.Fatalf("book took %d bad ratings", m.book.Len())
	}
	// The attacker's one honest rating is still taken.
	if err := topic.Publish(ctx, honest.Envelope); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "honest rating stored", func() bool { return m.book.Len() == 1 })
}

// TestPullCatchesUp: a node that was not there when ratings were gossiped
// pulls them from a peer, once per MinPullInterval.
func TestPullCatchesUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mn, err := mocknet.FullMeshConnected(2)
	if err != nil {
		t.Fatal(err)
	}
	defer mn.Close()
	old, newcomer := join(t, ctx, mn.Hosts()[0]), join(t, ctx, mn.Hosts()[1])
	prov, _, _ := crypto.GenerateEd25519Key(nil)
	for i := range 20 {
		c, _, _ := crypto.GenerateEd25519Key(nil)
		if _, err := old.book.Put(ctx, rating(t, prov, c, "s", float64(i%3-1))); err != nil {
			t.Fatal(err)
		}
	}
	res, err := newcomer.rep.Pull(ctx, old.h.ID(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Received != 20 || res.Accepted != 20 || newcomer.book.Len() != 20 {
		t.Fatalf("pulled %+v, book %d", res, newcomer.book.Len())
	}
	if _, err := newcomer.rep.Pull(ctx, old.h.ID(), time.Time{}); !errors.Is(err, ErrRemote) {
		t.Fatalf("second pull at once: %v", err)
	}
	if old.rep.Stats.Served.Load() != 1 {
		t.Fatalf("served %d", old.rep.Stats.Served.Load())
	}
}

// TestMalformedSyncRequestFailsAlone: garbage on a sync stream resets that
// stream; the next peer is served.
func TestMalformedSyncRequestFailsAlone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mn, err := mocknet.FullMeshConnected(3)
	if err != nil {
		t.Fatal(err)
	}
	defer mn.Close()
	server := join(t, ctx, mn.Hosts()[0])
	str, err := mn.Hosts()[1].NewStream(ctx, server.h.ID(), ID)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = str.Write([]byte{0xff, 0xff, 0xff, 0x0f, 1, 2, 3}) // a huge length
	_ = str.CloseWrite()
	buf := make([]byte, 1)
	if _, err := str.Read(buf); err == nil {
		t.Fatal("server answered a malformed request")
	}
	poll(t, ctx, "malformed counted", func() bool { return server.rep.Stats.Malformed.Load() == 1 })
	client := join(t, ctx, mn.Hosts()[2])
	if _, err := client.rep.Pull(ctx, server.h.ID(), time.Time{}); err != nil {
		t.Fatalf("honest pull after a malformed one: %v", err)
	}
}

func FuzzSyncRequest(f *testing.F) {
	var b []byte
	b, _ = appendMsg(b, &wirev1.ReputationSyncRequest{SinceUnixMs: 1700000000000, MaxBytes: 1 << 20})
	f.Add(b)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		readRequest(b)
	})
}

func FuzzSyncResponse(f *testing.F) {
	var b []byte
	b, _ = appendMsg(b, &wirev1.ReputationSyncResponse{Envelope: []byte("x")})
	f.Add(b)
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		readResponses(b, time.Unix(1800000000, 0))
	})
}

// rawRating seals any Rating message, as a forger would, skipping
// signed.SealRating's checks.
type rawRating struct{ msg *wirev1.Rating }

func (rawRating) Domain() string                   { return signed.RatingDomain }
func (rawRating) Codec() []byte                    { return []byte("/pullnet/rating") }
func (r rawRating) MarshalRecord() ([]byte, error) { return proto.Marshal(r.msg) }
func (r rawRating) UnmarshalRecord(b []byte) error { return proto.Unmarshal(b, r.msg) }

func sealRatingMsg(key crypto.PrivKey, m *wirev1.Rating) ([]byte, error) {
	env, err := record.Seal(rawRating{m}, key)
	if err != nil {
		return nil, err
	}
	return env.Marshal()
}

func appendMsg(b []byte, m proto.Message) ([]byte, error) {
	var buf bytes.Buffer
	err := pbio.NewDelimitedWriter(&buf).WriteMsg(m)
	return append(b, buf.Bytes()...), err
}

// readRequest decodes a sync request as the handler does.
func readRequest(b []byte) {
	_, _ = streams.ReadMsg[wirev1.ReputationSyncRequest](bytes.NewReader(b), MaxRequestSize)
}

// readResponses decodes a pull's answer as Pull does: size-capped
// messages, each envelope opened as a rating.
func readResponses(b []byte, now time.Time) {
	r := bytes.NewReader(b)
	for range maxSyncRatings {
		resp, err := streams.ReadMsg[wirev1.ReputationSyncResponse](r, MaxResponseSize)
		if err != nil {
			return
		}
		_, _ = signed.OpenRating(resp.GetEnvelope(), now)
	}
}
