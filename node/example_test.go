package node_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pullnet/pullnet/node"
	"github.com/pullnet/pullnet/resource"
)

// Two nodes in one process, on loopback: one advertises a GPU box, the other
// finds it through the DHT and asks for access.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	loopback := []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}

	provider, err := node.New(ctx, node.Config{ListenAddrs: loopback})
	if err != nil {
		log.Fatal(err)
	}
	defer provider.Close()
	consumer, err := node.New(ctx, node.Config{ListenAddrs: loopback, Bootstrap: []peer.AddrInfo{provider.AddrInfo()}})
	if err != nil {
		log.Fatal(err)
	}
	defer consumer.Close()

	box, err := provider.Advertise(ctx, resource.Resource{
		Kind:   "compute",
		Name:   "GPU box",
		Tags:   []string{"gpu"},
		Attrs:  map[string]string{"gpu.count": "2"},
		Access: resource.Access{Type: resource.AccessContact, Value: "ada@example.org"},
	})
	if err != nil {
		log.Fatal(err)
	}

	// Announcing in the DHT goes on in the background; wait for it so the
	// find below cannot miss the box.
	if err := provider.WaitAnnounced(ctx, box.ID); err != nil {
		log.Fatal(err)
	}
	for r, err := range consumer.Find(ctx, "kind:compute gpu.count>=2", node.FindOptions{Limit: 5}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("found:", r.Resource.Name)
	}

	grant, err := consumer.Connect(ctx, box.ID, "may I render a few frames?")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("granted:", grant.Granted, "access:", grant.Access.Value)
	// Output:
	// found: GPU box
	// granted: true access: ada@example.org
}
