// Command chainfind measures find across a chain of real pullnet nodes on
// 127.0.0.1 (real libp2p hosts over TCP, the real DHT and protocols, in one
// process): how long a find takes to its first and to its last result, and
// how long a fresh advertisement takes to become findable from the far end.
//
//	go run ./bench/chainfind [-nodes 6] [-finds 20] [-resources 10]
//
// Figures go to BENCHMARKS.md with the machine they came from.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pullnet/pullnet/node"
	"github.com/pullnet/pullnet/resource"
)

func main() {
	nodes := flag.Int("nodes", 6, "nodes in the chain; each bootstraps only from the previous one")
	finds := flag.Int("finds", 20, "finds to time")
	resources := flag.Int("resources", 10, "resources advertised on the first node (all match the timed find)")
	flag.Parse()
	if err := run(*nodes, *finds, *resources); err != nil {
		log.Fatal(err)
	}
}

func run(nNodes, nFinds, nRes int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	loopback := []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}
	var chain []*node.Node
	defer func() {
		for _, n := range chain {
			n.Close()
		}
	}()
	for i := range nNodes {
		cfg := node.Config{ListenAddrs: loopback}
		if i > 0 {
			cfg.Bootstrap = []peer.AddrInfo{chain[i-1].AddrInfo()}
		}
		n, err := node.New(ctx, cfg)
		if err != nil {
			return err
		}
		chain = append(chain, n)
	}
	provider, finder := chain[0], chain[nNodes-1]

	// Advertise-to-findable, one fresh resource at a time, each under a tag
	// of its own so that only its own announcement can make it findable.
	var toFindable []time.Duration
	for i := range nRes {
		tag := fmt.Sprintf("bench%d", i)
		start := time.Now()
		r, err := provider.Advertise(ctx, resource.Resource{
			Kind: "compute", Name: fmt.Sprintf("GPU box %d", i), Tags: []string{"gpu", tag},
			Attrs: map[string]string{"gpu.count": fmt.Sprint(1 + i%4)},
		})
		if err != nil {
			return err
		}
		for found := false; !found; {
			if ctx.Err() != nil {
				return fmt.Errorf("resource %d never became findable", i)
			}
			for res, err := range finder.Find(ctx, "tag:"+tag, node.FindOptions{Limit: 1}) {
				if err != nil {
					return err
				}
				found = res.Resource.ID == r.ID
			}
		}
		toFindable = append(toFindable, time.Since(start))
	}

	var first, last []time.Duration
	for range nFinds {
		start := time.Now()
		n := 0
		var f time.Duration
		for _, err := range finder.Find(ctx, "kind:compute tag:gpu", node.FindOptions{Limit: nRes}) {
			if err != nil {
				return err
			}
			if n == 0 {
				f = time.Since(start)
			}
			n++
		}
		if n != nRes {
			return fmt.Errorf("find returned %d results, want %d", n, nRes)
		}
		first = append(first, f)
		last = append(last, time.Since(start))
	}
	// The same run's libp2p ping between finder and provider (connected by
	// now) is the yardstick: figures as multiples of one round trip travel
	// better between machines than milliseconds do.
	var rtts []time.Duration
	pings := ping.Ping(ctx, finder.Host(), provider.ID())
	for range nFinds {
		res := <-pings
		if res.Error != nil {
			return fmt.Errorf("ping: %w", res.Error)
		}
		rtts = append(rtts, res.RTT)
	}
	slices.Sort(rtts)
	rtt := rtts[len(rtts)/2]

	fmt.Printf("chain of %d nodes on 127.0.0.1/tcp, %d resources on the first node, finds from the last\n", nNodes, nRes)
	report("ping finder→provider", rtts, rtt)
	report("advertise to findable", toFindable, rtt)
	report("find: first result", first, rtt)
	report("find: last result", last, rtt)
	return nil
}

func report(what string, ds []time.Duration, rtt time.Duration) {
	slices.Sort(ds)
	med := ds[len(ds)/2]
	fmt.Printf("%-24s n=%-3d median %8.2f ms (%5.1f RTT)   p90 %8.2f ms   min %8.2f ms   max %8.2f ms\n", what, len(ds),
		ms(med), float64(med)/float64(rtt), ms(ds[len(ds)*9/10]), ms(ds[0]), ms(ds[len(ds)-1]))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
