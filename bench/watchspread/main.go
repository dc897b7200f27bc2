// Command watchspread measures how fast a new resource reaches watchers:
// N nodes, every node but the first watches a query, the first advertises a
// matching resource, and the command reports when each watcher heard of it.
//
//	go run ./bench/watchspread -nodes 20            # real hosts on 127.0.0.1/TCP
//	go run ./bench/watchspread -nodes 100 -mocknet  # go-libp2p's mocknet, one process
//	go run ./bench/watchspread -nodes 20 -daemons   # 20 pulld processes, peerctl watch
//
// Watchers re-run their query every -refind (default 1h, so that only gossip
// counts). Each node bootstraps from a random earlier one.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pullnet/pullnet/node"
	"github.com/pullnet/pullnet/resource"
)

func main() {
	n := flag.Int("nodes", 20, "nodes, the first of which advertises")
	useMock := flag.Bool("mocknet", false, "run on go-libp2p's mocknet instead of loopback TCP")
	daemons := flag.Bool("daemons", false, "run real pulld processes, watching through peerctl")
	refind := flag.Duration("refind", time.Hour, "watch re-find interval")
	wait := flag.Duration("wait", 2*time.Minute, "how long to wait for every watcher")
	flag.Parse()
	if *daemons {
		if err := runDaemons(*n, *refind, *wait); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := run(*n, *useMock, *refind, *wait); err != nil {
		log.Fatal(err)
	}
}

func run(n int, useMock bool, refind, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), wait+2*time.Minute)
	defer cancel()
	var nodes []*node.Node
	defer func() {
		for _, nd := range nodes {
			nd.Close()
		}
	}()
	var mn mocknet.Mocknet
	if useMock {
		mn = mocknet.New()
		defer mn.Close()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	// One counter for every real host: gossip bytes are summed network-wide.
	bw := metrics.NewBandwidthCounter()
	for i := range n {
		cfg := node.Config{WatchRefind: refind}
		if useMock {
			k, _, _ := crypto.GenerateEd25519Key(nil)
			h, err := mn.AddPeer(k, ma.StringCast(fmt.Sprintf("/ip4/%d.%d.1.1/tcp/4001", 11+i/250, i%250)))
			if err != nil {
				return err
			}
			cfg.Host, cfg.Key = h, k
		} else {
			cfg.ListenAddrs = []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}
			cfg.Bandwidth = bw
			if i > 0 {
				cfg.Bootstrap = []peer.AddrInfo{nodes[rng.IntN(i)].AddrInfo()}
			}
		}
		nd, err := node.New(ctx, cfg)
		if err != nil {
			return err
		}
		nodes = append(nodes, nd)
		if useMock && i > 0 {
			if err := mn.LinkAll(); err != nil {
				return err
			}
			if _, err := mn.ConnectPeers(nd.ID(), nodes[rng.IntN(i)].ID()); err != nil {
				return err
			}
		}
	}
	// Let the DHT settle: every node looks itself up once.
	for _, nd := range nodes {
		nd.Find(ctx, "tag:warmup", node.FindOptions{Limit: 1})(func(node.Result, error) bool { return true })
	}

	var (
		mu    sync.Mutex
		heard []time.Duration
		start time.Time
		done  = make(chan struct{})
	)
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	for _, nd := range nodes[1:] {
		go func() {
			for ev, err := range nd.Watch(wctx, "kind:bench tag:spread", node.WatchOptions{}) {
				if err != nil || ev.Type != node.EventAdded {
					continue
				}
				mu.Lock()
				heard = append(heard, time.Since(start))
				if len(heard) == n-1 {
					close(done)
				}
				mu.Unlock()
				return
			}
		}()
	}
	// A benchmark, not a test: give the watchers' subscriptions a moment to
	// be advertised in the DHT, so that what is timed is the spread of one
	// announcement, not the watchers' start-up.
	time.Sleep(3 * time.Second)
	// libp2p's meters settle once a second: read them 2 s apart, once idle
	// (the baseline of gossip upkeep) and once around the announcement.
	idle0 := gossipBytes(bw)
	time.Sleep(2 * time.Second)
	before := gossipBytes(bw)
	idle := before - idle0
	mu.Lock()
	start = time.Now()
	mu.Unlock()
	if _, err := nodes[0].Advertise(ctx, resource.Resource{Kind: "bench", Name: "spread test", Tags: []string{"spread"}}); err != nil {
		return err
	}
	select {
	case <-done:
	case <-time.After(wait):
	}
	time.Sleep(2*time.Second - time.Since(start))
	after := gossipBytes(bw)
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(heard)
	net := "loopback TCP"
	if useMock {
		net = "mocknet"
	}
	fmt.Printf("%d nodes on %s, %d watchers, refind %v\n", n, net, n-1, refind)
	fmt.Printf("watchers that heard within %v: %d of %d\n", wait, len(heard), n-1)
	if len(heard) > 0 {
		fmt.Printf("advertise → watcher: p50 %v  p99 %v  max %v\n",
			heard[len(heard)/2].Round(time.Millisecond), heard[len(heard)*99/100].Round(time.Millisecond), heard[len(heard)-1].Round(time.Millisecond))
	}
	if !useMock {
		fmt.Printf("gossip bytes sent network-wide in the 2 s after the advertise: %d; in 2 s idle before it: %d; the announcement's share: %d (%.0f per watcher)\n",
			after-before, idle, after-before-idle, float64(after-before-idle)/float64(n-1))
	}
	return nil
}

// gossipBytes sums what every host sent on gossipsub's protocols: the
// announcement, its forwards, and the gossip control traffic of the window.
func gossipBytes(bw *metrics.BandwidthCounter) int64 {
	var total int64
	for p, st := range bw.GetBandwidthByProtocol() {
		if strings.HasPrefix(string(p), "/meshsub/") || strings.HasPrefix(string(p), "/floodsub/") {
			total += st.TotalOut
		}
	}
	return total
}
