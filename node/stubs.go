package node

import (
	"context"
	"errors"
	"iter"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pullnet/pullnet/resource"
)

var errTODO = errors.New("not implemented yet")

// Node is a pullnet participant.
type Node struct{ h host.Host }

// Config: see config.go (being written).
type Config struct{}

// Policy modes.
const (
	PolicyOpen      = "open"
	PolicyAllowlist = "allowlist"
	PolicyManual    = "manual"
)

func New(ctx context.Context, cfg Config) (*Node, error) { return nil, errTODO }
func (n *Node) ID() peer.ID                              { return "" }
func (n *Node) Addrs() []ma.Multiaddr                    { return nil }
func (n *Node) Host() host.Host                          { return n.h }
func (n *Node) Peers() []PeerInfo                        { return nil }
func (n *Node) Policy() string                           { return "" }
func (n *Node) Advertise(ctx context.Context, r resource.Resource) (resource.Resource, error) {
	return r, errTODO
}
func (n *Node) Withdraw(ctx context.Context, id string) error { return errTODO }
func (n *Node) Resources() []resource.Resource                { return nil }
func (n *Node) Find(ctx context.Context, query string, opt FindOptions) iter.Seq2[Result, error] {
	return func(yield func(Result, error) bool) { yield(Result{}, errTODO) }
}
func (n *Node) Connect(ctx context.Context, id, message string) (Grant, error) {
	return Grant{}, errTODO
}
func (n *Node) Requests() []Request                  { return nil }
func (n *Node) Approve(session string) error         { return errTODO }
func (n *Node) Decline(session, reason string) error { return errTODO }
func (n *Node) Close() error                         { return nil }
