// Package termkeys spreads a term's provider records over several DHT keys,
// so that the ~20 peers closest to one key do not carry all the load of a
// popular term.
//
// Plain provider records put every provider of a term under one key, and
// every find for the term at the same ~20 peers: for a term with thousands
// of providers those peers serve every lookup and answer each with every
// record. Here a term has Subkeys keys. Each provider has a home key, chosen
// by its peer ID, so the providers of a popular term split evenly over the
// keys; a finder looks up one key at random and usually has enough
// providers from it, so lookups split evenly too.
//
// A rare term would then need every key looked up to find all its
// providers. So a provider first counts the providers under its home key:
// when it finds fewer than RareThreshold, the term is rare and it provides
// under every key, and a finder that sees fewer than RareThreshold under
// the key it drew knows it has them all and stops. A rare term costs a
// finder one lookup, as before, and a provider Subkeys provides plus one
// count; a popular term costs a finder one lookup per key it needs.
package termkeys

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pullnet/pullnet/resource"
)

const (
	// Subkeys is how many DHT keys a term's provider records spread over.
	Subkeys = 4
	// RareThreshold is the provider count below which a term is rare: its
	// providers provide under every key, and one key has them all.
	RareThreshold = 20
)

// Router is the part of a DHT this package uses (kad-dht's IpfsDHT).
type Router interface {
	Provide(ctx context.Context, key cid.Cid, announce bool) error
	FindProvidersAsync(ctx context.Context, key cid.Cid, count int) <-chan peer.AddrInfo
}

// Key is term's i-th DHT key. Key 0 is the term's plain key
// (resource.TermCID), so a rare term stays findable by a plain lookup.
func Key(term string, i int) cid.Cid {
	if i == 0 {
		return resource.TermCID(term)
	}
	return resource.TermCID(fmt.Sprintf("%s\x00sub%d", term, i))
}

// Home is the key index p provides term under when the term is popular.
func Home(term string, p peer.ID) int {
	sum := sha256.Sum256([]byte("pullnet/home/v1\x00" + string(p) + "\x00" + term))
	return int(binary.BigEndian.Uint64(sum[:8]) % Subkeys)
}

// count reports how many providers the DHT holds under key, stopping at
// limit.
func count(ctx context.Context, r Router, key cid.Cid, limit int) int {
	n := 0
	for range r.FindProvidersAsync(ctx, key, limit) {
		n++
	}
	return n
}

// Provide announces self as a provider of term: under its home key, and,
// when the home key holds fewer than RareThreshold other providers, under
// every key. The count runs alongside the home key's provide, so a rare
// term costs two lookups' time, not three. It reports whether the term
// counted as rare. An error means some key was not provided under; the
// caller retries the term.
func Provide(ctx context.Context, r Router, self peer.ID, term string) (rare bool, err error) {
	home := Home(term, self)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	provide := func(i int) {
		defer wg.Done()
		if err := r.Provide(ctx, Key(term, i), true); err != nil {
			mu.Lock()
			if first == nil {
				first = fmt.Errorf("provide %q under key %d: %w", term, i, err)
			}
			mu.Unlock()
		}
	}
	wg.Add(1)
	go provide(home)
	// The count may or may not see self's new record: one more allows for
	// it.
	rare = count(ctx, r, Key(term, home), RareThreshold+1) <= RareThreshold
	if rare && ctx.Err() == nil {
		for i := range Subkeys {
			if i != home {
				wg.Add(1)
				go provide(i)
			}
		}
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return rare, first
}

// FindProviders streams the providers of term, each once. It looks up one
// key at random; if that key holds RareThreshold providers or more, the
// term is popular and its providers are spread, so it goes on with the
// other keys in random order, one after another, until ctx ends or count
// providers (0: no limit) have come. The channel closes when it is done.
func FindProviders(ctx context.Context, r Router, term string, count int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo)
	go func() {
		defer close(out)
		seen := map[peer.ID]bool{}
		for n, i := range rand.Perm(Subkeys) {
			under := 0
			for ai := range r.FindProvidersAsync(ctx, Key(term, i), count) {
				under++
				if seen[ai.ID] {
					continue
				}
				seen[ai.ID] = true
				select {
				case out <- ai:
				case <-ctx.Done():
					return
				}
				if count > 0 && len(seen) >= count {
					return
				}
			}
			if ctx.Err() != nil || (n == 0 && under < RareThreshold) {
				return
			}
		}
	}()
	return out
}
