package peerctl_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoLibp2pImports keeps peerctl a thin client: it talks to pulld over
// the control socket and must not link the p2p stack, which would make it
// several times larger and slower to start.
func TestNoLibp2pImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/pullnet/pullnet/cmd/peerctl").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "libp2p") || strings.Contains(dep, "multiformats/go-multiaddr") {
			t.Errorf("peerctl depends on %s", dep)
		}
	}
}
