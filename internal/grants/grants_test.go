package grants

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pullnet/pullnet/protocol/connect"
	"github.com/pullnet/pullnet/protocol/signed"
	"github.com/pullnet/pullnet/resource"
)

type fixture struct {
	m        *Manager
	store    ds.Batching
	key      crypto.PrivKey
	svc, url signed.Record
	consumer peer.ID
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	key, _, _ := crypto.GenerateEd25519Key(nil)
	svc, err := signed.SealResource(key, resource.Resource{Handle: "svc", Kind: "service", Name: "web", Access: resource.Access{Type: resource.AccessTCP}})
	if err != nil {
		t.Fatal(err)
	}
	url, err := signed.SealResource(key, resource.Resource{Handle: "url", Kind: "dataset", Name: "docs", Access: resource.Access{Type: resource.AccessURL, Value: "https://example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	recs := map[string]signed.Record{svc.Resource.ID: svc, url.Resource.ID: url}
	store := dssync.MutexWrap(ds.NewMapDatastore())
	m, err := New(context.Background(), Config{
		Key:     key,
		Lookup:  func(id string) (signed.Record, bool) { r, ok := recs[id]; return r, ok },
		Service: func(id string) (string, bool) { return "127.0.0.1:8080", id == svc.Resource.ID },
		Store:   store,
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ck, _, _ := crypto.GenerateEd25519Key(nil)
	consumer, _ := peer.IDFromPrivateKey(ck)
	return &fixture{m: m, store: store, key: key, svc: svc, url: url, consumer: consumer}
}

func (f *fixture) grant(t *testing.T, id string) connect.Response {
	t.Helper()
	resp := f.m.HandleConnect(context.Background(), f.consumer, connect.Request{ResourceID: id})
	if !resp.Granted {
		t.Fatalf("not granted: %s", resp.Reason)
	}
	return resp
}

func TestAuthorize(t *testing.T) {
	f := newFixture(t)
	ok := f.grant(t, f.svc.Resource.ID)
	g, err := f.m.Authorize(f.consumer, ok.Receipt)
	if err != nil || g.Target != "127.0.0.1:8080" || g.Session != ok.Session {
		t.Fatalf("valid token: %+v %v", g, err)
	}

	otherKey, _, _ := crypto.GenerateEd25519Key(nil)
	otherPeer, _ := peer.IDFromPrivateKey(otherKey)
	rc, _ := signed.OpenReceipt(ok.Receipt)
	// A receipt for the same session signed by someone else.
	forgedRC := rc
	forgedRC.Provider = otherPeer
	forged, _ := signed.SealReceipt(otherKey, forgedRC)
	// A receipt this provider signed but never granted (no such session).
	unknownRC := rc
	unknownRC.Session = "made-up"
	unknown, _ := signed.SealReceipt(f.key, unknownRC)
	// The right session with another resource swapped in.
	swappedRC := rc
	swappedRC.ResourceID = f.url.Resource.ID
	swapped, _ := signed.SealReceipt(f.key, swappedRC)
	urlGrant := f.grant(t, f.url.Resource.ID)

	for _, tt := range []struct {
		name  string
		from  peer.ID
		token []byte
		want  string
	}{
		{"wrong peer", otherPeer, ok.Receipt, "another peer"},
		{"forged", f.consumer, forged, "not issued by this provider"},
		{"garbage", f.consumer, []byte("garbage"), "does not verify"},
		{"unknown session", f.consumer, unknown, "unknown session"},
		{"wrong resource", f.consumer, swapped, "unknown session"},
		{"not a tcp service", f.consumer, urlGrant.Receipt, "not a TCP service"},
	} {
		if _, err := f.m.Authorize(tt.from, tt.token); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}

	// Expired: the same token after its lifetime.
	f.m.now = func() time.Time { return rc.Expires.Add(time.Second) }
	if _, err := f.m.Authorize(f.consumer, ok.Receipt); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired: %v", err)
	}
	f.m.now = time.Now

	// Revoked, and the revocation survives a restart of the manager.
	if err := f.m.Revoke(context.Background(), ok.Session); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Authorize(f.consumer, ok.Receipt); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("revoked: %v", err)
	}
	again, err := New(context.Background(), Config{Key: f.key, Lookup: f.m.lookup, Service: f.m.service, Store: f.store, Logger: f.m.log})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.Authorize(f.consumer, ok.Receipt); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("revoked after restart: %v", err)
	}
	if len(again.Sessions()) != 2 {
		t.Errorf("sessions after restart: %d, want 2", len(again.Sessions()))
	}
}

// TestMinTrust: a consumer below the policy's minimum trust is declined
// with the figures; at or above it, granted; no minimum grants all.
func TestMinTrust(t *testing.T) {
	f := newFixture(t)
	trust := map[peer.ID]float64{}
	f.m.trust = func(p peer.ID) float64 { return trust[p] }
	for _, tc := range []struct {
		min, trust float64
		granted    bool
	}{
		{0, -1, true}, // no minimum
		{0.2, 0, false},
		{0.2, 0.19, false},
		{0.2, 0.2, true},
		{-0.5, -0.6, false},
		{-0.5, 0, true},
	} {
		if err := f.m.SetPolicy(Policy{MinTrust: tc.min}); err != nil {
			t.Fatal(err)
		}
		trust[f.consumer] = tc.trust
		resp := f.m.HandleConnect(context.Background(), f.consumer, connect.Request{ResourceID: f.url.Resource.ID})
		if resp.Granted != tc.granted {
			t.Errorf("min %v, trust %v: granted %v (%s)", tc.min, tc.trust, resp.Granted, resp.Reason)
		}
		if !resp.Granted && !strings.Contains(resp.Reason, "below its minimum") {
			t.Errorf("min %v, trust %v: reason %q", tc.min, tc.trust, resp.Reason)
		}
	}
	if err := f.m.SetPolicy(Policy{MinTrust: 2}); err == nil {
		t.Error("min_trust 2 accepted")
	}
}
