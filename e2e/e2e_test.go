package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pullnet-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for _, cmd := range []string{"pulld", "peerctl"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, cmd), "github.com/pullnet/pullnet/cmd/"+cmd).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", cmd, err, out)
			os.Exit(2)
		}
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is one pulld process.
type daemon struct {
	t    *testing.T
	data string
	cmd  *exec.Cmd
	log  *bytes.Buffer
	done chan struct{}
}

// startDaemon runs pulld on data, listening on loopback only, bootstrapping
// from the given peers, and waits until its control API answers.
func startDaemon(t *testing.T, data string, bootstrap ...string) *daemon {
	t.Helper()
	args := []string{"run", "--data", data, "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--log-level", "debug"}
	for _, b := range bootstrap {
		args = append(args, "--bootstrap", b)
	}
	d := &daemon{t: t, data: data, log: &bytes.Buffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(filepath.Join(binDir, "pulld"), args...)
	d.cmd.Stdout = d.log
	d.cmd.Stderr = d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			t.Logf("pulld %s log:\n%s", filepath.Base(data), tail(d.log.String(), 60))
		}
	})
	poll(t, 30*time.Second, "pulld on "+data+" to answer", func() bool {
		select {
		case <-d.done:
			t.Fatalf("pulld exited early:\n%s", d.log.String())
		default:
		}
		// Not d.peerctl: a daemon that is still starting is no news.
		return exec.Command(filepath.Join(binDir, "peerctl"), "--data", d.data, "status").Run() == nil
	})
	return d
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemon) stop() {
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
		d.t.Errorf("pulld %s did not stop on SIGTERM", d.data)
	}
}

// peerctl runs the CLI against this daemon and returns stdout and the exit code.
func (d *daemon) peerctl(args ...string) (string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "peerctl"), append([]string{"--data", d.data}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			d.t.Fatalf("peerctl %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	if code >= 2 && stderr.Len() > 0 {
		d.t.Logf("peerctl %v: exit %d: %s", args, code, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), code
}

// mustJSON runs peerctl -o json and decodes its single JSON object.
func (d *daemon) mustJSON(v any, args ...string) {
	d.t.Helper()
	out, code := d.peerctl(append(args, "-o", "json")...)
	if code != 0 {
		d.t.Fatalf("peerctl %v: exit %d\n%s", args, code, out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		d.t.Fatalf("peerctl %v: %v\n%s", args, err, out)
	}
}

type findResult struct {
	ID       string   `json:"id"`
	Provider string   `json:"provider"`
	Addrs    []string `json:"addrs"`
	Resource struct {
		Name  string            `json:"name"`
		Attrs map[string]string `json:"attrs"`
	} `json:"resource"`
}

// find runs peerctl find and returns its NDJSON results and exit code.
func (d *daemon) find(query string) ([]findResult, int) {
	d.t.Helper()
	out, code := d.peerctl("find", query, "--timeout", "10s", "-o", "json")
	var res []findResult
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var r findResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			d.t.Fatalf("find output is not NDJSON: %v\n%s", err, out)
		}
		res = append(res, r)
	}
	return res, code
}

func ids(rs []findResult) map[string]bool {
	m := map[string]bool{}
	for _, r := range rs {
		m[r.ID] = true
	}
	return m
}

type status struct {
	PeerID string   `json:"peer_id"`
	Addrs  []string `json:"addrs"`
	Peers  int      `json:"peers"`
}

// loopbackAddr is the daemon's 127.0.0.1 TCP multiaddr, to bootstrap from.
func (d *daemon) loopbackAddr() string {
	d.t.Helper()
	var st status
	d.mustJSON(&st, "status")
	for _, a := range st.Addrs {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") && strings.Contains(a, "/p2p/") {
			return a
		}
	}
	d.t.Fatalf("no loopback address in %v", st.Addrs)
	return ""
}

// TestChain runs six daemons in a chain, each bootstrapping only from the
// previous one, so the finder at the end starts out knowing nothing of the
// provider at the start.
func TestChain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six daemons")
	}
	root := t.TempDir()
	const n = 6
	var ds []*daemon
	for i := range n {
		var boot []string
		if i > 0 {
			boot = []string{ds[i-1].loopbackAddr()}
		}
		ds = append(ds, startDaemon(t, filepath.Join(root, fmt.Sprintf("d%d", i)), boot...))
	}
	provider, finder := ds[0], ds[n-1]
	var provStatus status
	provider.mustJSON(&provStatus, "status")

	var adv struct {
		ID  string `json:"id"`
		Seq uint64 `json:"seq"`
	}
	provider.mustJSON(&adv, "advertise", "--kind", "compute", "--name", "GPU box", "--desc", "two A100s",
		"--tag", "gpu", "--tag", "cuda", "--attr", "gpu.count=2", "--attr", "region=eu")
	var near struct {
		ID string `json:"id"`
	}
	provider.mustJSON(&near, "advertise", "--kind", "compute", "--name", "small GPU box",
		"--tag", "gpu", "--attr", "gpu.count=1", "--attr", "region=eu")
	if adv.ID == "" || near.ID == "" || adv.ID == near.ID {
		t.Fatalf("advertise returned ids %q and %q", adv.ID, near.ID)
	}

	start := time.Now()
	var found []findResult
	poll(t, 90*time.Second, "the finder to find the GPU box across the chain", func() bool {
		found, _ = finder.find("kind:compute tag:gpu")
		return ids(found)[adv.ID]
	})
	t.Logf("advertise to findable across %d daemons: %v", n, time.Since(start))
	for _, r := range found {
		if r.ID == adv.ID && (r.Provider != provStatus.PeerID || len(r.Addrs) == 0 || r.Resource.Name != "GPU box") {
			t.Fatalf("result = %+v", r)
		}
	}

	// The attribute filter keeps the one-GPU box out.
	filtered, code := finder.find("kind:compute gpu.count>=2")
	if code != 0 || !ids(filtered)[adv.ID] || ids(filtered)[near.ID] {
		t.Fatalf("gpu.count>=2: exit %d, results %+v", code, filtered)
	}
	// Nothing matches: exit 1, like grep.
	if res, code := finder.find("kind:compute gpu.count>=64"); code != 1 || len(res) != 0 {
		t.Fatalf("no match: exit %d, results %+v", code, res)
	}
	// A malformed query: exit 2 and the position.
	out, code := finder.peerctl("find", `kind:compute "unterminated`)
	if code != 2 {
		t.Fatalf("malformed query: exit %d, out %q", code, out)
	}

	var grant struct {
		Granted bool   `json:"granted"`
		Session string `json:"session"`
		Reason  string `json:"reason"`
	}
	finder.mustJSON(&grant, "connect", adv.ID, "--message", "hello from the far end")
	if !grant.Granted || grant.Session == "" {
		t.Fatalf("connect: %+v", grant)
	}

	// Restart the provider on the same data directory: same peer, and it
	// announces its resources again by itself.
	provider.stop()
	provider = startDaemon(t, provider.data, ds[1].loopbackAddr())
	var again status
	provider.mustJSON(&again, "status")
	if again.PeerID != provStatus.PeerID {
		t.Fatalf("peer ID changed across restart: %s → %s", provStatus.PeerID, again.PeerID)
	}
	poll(t, 90*time.Second, "the restarted provider's box to be found", func() bool {
		res, _ := finder.find("kind:compute tag:gpu gpu.count=2")
		return ids(res)[adv.ID]
	})

	if _, code := provider.peerctl("withdraw", adv.ID); code != 0 {
		t.Fatalf("withdraw: exit %d", code)
	}
	poll(t, 30*time.Second, "the withdrawn box to be gone", func() bool {
		res, _ := finder.find("kind:compute tag:gpu")
		return !ids(res)[adv.ID]
	})
	var declined struct {
		Granted bool   `json:"granted"`
		Reason  string `json:"reason"`
	}
	out, code = finder.peerctl("connect", adv.ID, "-o", "json")
	if err := json.Unmarshal([]byte(out), &declined); code != 1 || err != nil || declined.Granted || declined.Reason == "" {
		t.Fatalf("connect to a withdrawn resource: exit %d, %q", code, out)
	}
}

// poll checks cond until it holds or the timeout passes.
func poll(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}
