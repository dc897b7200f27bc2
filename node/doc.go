// Package node is pullnet as a library: a participant in the hub-free pull
// network, with no daemon needed.
//
// A Node advertises its participant's resources as signed records under
// index terms in pullnet's own Kademlia DHT, answers find and connect
// requests from other peers, and finds and connects to what others offer:
//
//	n, err := node.New(ctx, node.Config{})          // fresh key, in-memory store
//	r, err := n.Advertise(ctx, resource.Resource{Kind: "compute", Name: "GPU box", Tags: []string{"gpu"}})
//	for res, err := range other.Find(ctx, "kind:compute tag:gpu", node.FindOptions{Limit: 10}) { ... }
//	g, err := other.Connect(ctx, r.ID, "hello")
//
// The node composes parts that live in their own packages: the catalog of
// own resources (internal/catalog), the finder (internal/finder), the
// connect policy and sessions (internal/grants) and the stream protocols
// (protocol/...). pulld is a thin wrapper around a Node.
package node
