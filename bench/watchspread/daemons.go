package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// runDaemons does the measurement with real pulld processes driven by
// peerctl: each watcher is a `peerctl watch -o json` process, and a watcher
// has heard when its "added" line arrives.
func runDaemons(n int, refind, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), wait+3*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "watchspread")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, c := range []string{"pulld", "peerctl"} {
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, c), "github.com/pullnet/pullnet/cmd/"+c).CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", c, err, out)
		}
	}
	peerctl := func(data string, args ...string) *exec.Cmd {
		return exec.CommandContext(ctx, filepath.Join(dir, "peerctl"), append([]string{"--data", data}, args...)...)
	}
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
	}()
	rng := rand.New(rand.NewPCG(1, 2))
	var datas, addrs []string
	for i := range n {
		data := filepath.Join(dir, fmt.Sprintf("d%02d", i))
		args := []string{"run", "--data", data, "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--log-level", "error",
			"--watch-refind", refind.String()}
		if i > 0 {
			args = append(args, "--bootstrap", addrs[rng.IntN(i)])
		}
		p := exec.CommandContext(ctx, filepath.Join(dir, "pulld"), args...)
		p.Stderr = os.Stderr
		if err := p.Start(); err != nil {
			return err
		}
		procs = append(procs, p)
		var st struct{ Addrs []string }
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			out, err := peerctl(data, "status", "-o", "json").Output()
			if err == nil && json.Unmarshal(out, &st) == nil && len(st.Addrs) > 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("pulld %d did not start", i)
			}
		}
		datas, addrs = append(datas, data), append(addrs, st.Addrs[0])
	}

	var (
		mu    sync.Mutex
		heard []time.Duration
		start time.Time
		done  = make(chan struct{})
		ready sync.WaitGroup
	)
	for _, data := range datas[1:] {
		w := peerctl(data, "watch", "kind:bench", "tag:spread", "-o", "json")
		out, err := w.StdoutPipe()
		if err != nil {
			return err
		}
		if err := w.Start(); err != nil {
			return err
		}
		procs = append(procs, w)
		ready.Add(1)
		go func() {
			sc := bufio.NewScanner(out)
			started := false
			defer func() {
				if !started {
					ready.Done()
				}
			}()
			for sc.Scan() {
				line := sc.Text()
				if !started && strings.Contains(line, `"started"`) {
					started = true
					ready.Done()
					continue
				}
				if strings.Contains(line, `"added"`) {
					mu.Lock()
					heard = append(heard, time.Since(start))
					if len(heard) == n-1 {
						close(done)
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	ready.Wait()
	// A benchmark, not a test: let the watchers' subscriptions reach the DHT.
	time.Sleep(3 * time.Second)
	mu.Lock()
	start = time.Now()
	mu.Unlock()
	if out, err := peerctl(datas[0], "advertise", "--kind", "bench", "--name", "spread test", "--tag", "spread").CombinedOutput(); err != nil {
		return fmt.Errorf("advertise: %v: %s", err, out)
	}
	select {
	case <-done:
	case <-time.After(wait):
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(heard)
	fmt.Printf("%d pulld processes on loopback TCP, %d watchers (peerctl watch -o json), refind %v\n", n, n-1, refind)
	fmt.Printf("watchers that heard within %v: %d of %d\n", wait, len(heard), n-1)
	if len(heard) > 0 {
		fmt.Printf("advertise → watcher (including peerctl advertise's start): p50 %v  p99 %v  max %v\n",
			heard[len(heard)/2].Round(time.Millisecond), heard[len(heard)*99/100].Round(time.Millisecond), heard[len(heard)-1].Round(time.Millisecond))
	}
	return nil
}
