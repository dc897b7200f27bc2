package termkeys

import (
	"context"
	"fmt"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
)

// TestOnRealDHT: on go-libp2p-kad-dht over mocknet, the first providers of
// a term provide it under every key and later ones under their home key
// only, and a find from a peer that provides nothing still finds them all.
func TestOnRealDHT(t *testing.T) {
	const n, providers = 40, 30
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mn := mocknet.New()
	defer mn.Close()
	var dhts []*dht.IpfsDHT
	for i := range n {
		key, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		h, err := mn.AddPeer(key, ma.StringCast(fmt.Sprintf("/ip4/%d.%d.1.1/tcp/4001", 11+i/250, i%250)))
		if err != nil {
			t.Fatal(err)
		}
		d, err := dht.New(h, dht.Mode(dht.ModeServer), dht.ProtocolPrefix("/termkeys-test"),
			dht.Datastore(dssync.MutexWrap(ds.NewMapDatastore())), dht.DisableAutoRefresh())
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		dhts = append(dhts, d)
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	// Each peer meets the next few, then fills its table by a refresh.
	for i := range n {
		for j := 1; j <= 3; j++ {
			if _, err := mn.ConnectPeers(dhts[i].Host().ID(), dhts[(i+j)%n].Host().ID()); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, d := range dhts {
		<-d.ForceRefresh()
	}
	rare := 0
	for _, d := range dhts[:providers] {
		r, err := Provide(ctx, d, d.Host().ID(), "tag:hot")
		if err != nil {
			t.Fatal(err)
		}
		if r {
			rare++
		}
	}
	if rare > RareThreshold+1 || rare < RareThreshold/Subkeys {
		t.Fatalf("%d of %d providers saw the term as rare", rare, providers)
	}
	got := map[peer.ID]bool{}
	for ai := range FindProviders(ctx, dhts[n-1], "tag:hot", 0) {
		got[ai.ID] = true
	}
	if len(got) != providers {
		t.Fatalf("found %d of %d providers", len(got), providers)
	}
	t.Logf("%d of %d providers provided under every key", rare, providers)
}
