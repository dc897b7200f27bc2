package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// bigSize is the size of the transfer checked end to end.
const bigSize = 100 << 20

// TestTunnel runs an HTTP server next to a provider daemon, and reaches it
// from a consumer daemon through a forward: a GET returns the right body,
// and a 100 MiB download arrives intact.
func TestTunnel(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two daemons and moves 100 MiB")
	}
	big := make([]byte, bigSize)
	rand.Read(big)
	want := sha256.Sum256(big)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Write(big)
			return
		}
		fmt.Fprint(w, "hello through the tunnel")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	root := t.TempDir()
	prov := startDaemon(t, filepath.Join(root, "prov"))
	cons := startDaemon(t, filepath.Join(root, "cons"), prov.loopbackAddr())

	var adv struct {
		ID string `json:"id"`
	}
	prov.mustJSON(&adv, "advertise", "--kind", "service", "--name", "web server", "--tag", "http", "--service", ln.Addr().String())
	var found []findResult
	poll(t, 60*time.Second, "the consumer to find the service", func() bool {
		found, _ = cons.find("kind:service tag:http")
		return ids(found)[adv.ID]
	})
	// The published record does not carry the provider's local address.
	out, _ := cons.peerctl("find", "kind:service tag:http", "-o", "json")
	if strings.Contains(out, ln.Addr().String()) {
		t.Fatalf("find output reveals the service address: %s", out)
	}

	var grant struct {
		Granted bool   `json:"granted"`
		Session string `json:"session"`
		Forward string `json:"forward"`
	}
	cons.mustJSON(&grant, "connect", adv.ID, "--forward", "127.0.0.1:0")
	if !grant.Granted || grant.Forward == "" {
		t.Fatalf("connect --forward: %+v", grant)
	}
	client := &http.Client{Timeout: 2 * time.Minute}
	resp, err := client.Get("http://" + grant.Forward + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello through the tunnel" {
		t.Fatalf("GET through the tunnel: %q", body)
	}

	start := time.Now()
	resp, err = client.Get("http://" + grant.Forward + "/big")
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	if err != nil || n != bigSize {
		t.Fatalf("100 MiB through the tunnel: got %d bytes, %v", n, err)
	}
	if got := h.Sum(nil); string(got) != string(want[:]) {
		t.Fatal("100 MiB through the tunnel: checksum differs")
	}
	t.Logf("100 MiB through the tunnel in %v", time.Since(start))

	// forwards counts the bytes; sessions on the provider too.
	var fwds []struct {
		Session string `json:"session"`
		BytesIn int64  `json:"bytes_in"`
	}
	poll(t, 10*time.Second, "forwards to count the transfer", func() bool {
		out, code := cons.peerctl("forwards", "-o", "json")
		return code == 0 && json.Unmarshal([]byte(out), &fwds) == nil && len(fwds) == 1 && fwds[0].BytesIn >= bigSize
	})

	// Revoking the session closes the path: the next GET fails.
	if _, code := prov.peerctl("revoke", grant.Session); code != 0 {
		t.Fatalf("revoke: exit %d", code)
	}
	client.CloseIdleConnections()
	if resp, err := client.Get("http://" + grant.Forward + "/"); err == nil {
		resp.Body.Close()
		t.Fatal("GET after revoke succeeded")
	}
	out, _ = cons.peerctl("forwards", "-o", "json")
	if !strings.Contains(out, "revoked") {
		t.Fatalf("forwards after revoke does not say why: %s", out)
	}
}
