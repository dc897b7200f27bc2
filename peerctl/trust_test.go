package peerctl_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pullnet/pullnet/internal/control/controltest"
	"github.com/pullnet/pullnet/node"
)

func TestRateAndTrustCommands(t *testing.T) {
	b := findBackend()
	b.TrustOf = map[peer.ID]node.TrustScore{controltest.PeerID2: {Peer: controltest.PeerID2, Value: -0.5, Evidence: 1,
		Contributors: []node.TrustContribution{{Rater: controltest.PeerID3, RaterTrust: 0.25, Sum: -1, Count: 1, Weight: -1}}}}
	d := startDaemon(t, b)

	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"rate", "s1"}, 2, "missing --score"},
		{[]string{"rate", "s1", "--score", "2"}, 2, "want a value from -1 to 1"},
		{[]string{"rate", "nope", "--score", "1"}, 2, "not found"},
		{[]string{"trust", "add", controltest.PeerID3.String(), "--weight", "0"}, 2, "trust remove"},
		{[]string{"trust", "not-a-peer"}, 2, "not a peer ID"},
	} {
		r := d.run(tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want %d and one line with %q", tc.args, r.code, r.stderr, tc.code, tc.stderr)
		}
	}

	if r := d.run("ratings"); r.code != 1 || r.stdout != "" {
		t.Errorf("ratings with none: exit %d, stdout %q", r.code, r.stdout)
	}
	res := d.ok("connect", b.Network[0].Resource.ID, "-o", "json")
	session := jsonLines(t, res)[0]["session"].(string)
	out := d.ok("rate", session, "--score=-1", "--comment", "never answered")
	if !strings.Contains(out, "rated "+controltest.PeerID2.String()+" -1.00") {
		t.Errorf("rate: %q", out)
	}
	out = d.ok("ratings", controltest.PeerID2.String(), "-o", "json")
	var rs []map[string]any
	if err := json.Unmarshal([]byte(out), &rs); err != nil || len(rs) != 1 || rs[0]["score"] != -1.0 {
		t.Errorf("ratings: %q", out)
	}
	out = d.ok("trust", controltest.PeerID2.String())
	if !strings.Contains(out, "-0.50") || !strings.Contains(out, "contributors") {
		t.Errorf("trust PEER: %q", out)
	}
	out = d.ok("trust", "add", controltest.PeerID3.String())
	if !strings.Contains(out, "trust in "+controltest.PeerID3.String()) {
		t.Errorf("trust add: %q", out)
	}
	if got := b.Trust(controltest.PeerID3).Anchor; got != 1 {
		t.Errorf("anchor after trust add: %v", got)
	}
	d.ok("trust", "remove", controltest.PeerID3.String())
	if got := b.Trust(controltest.PeerID3).Anchor; got != 0 {
		t.Errorf("anchor after trust remove: %v", got)
	}
	out = d.ok("trust", "why", controltest.PeerID2.String())
	if !strings.Contains(out, "└─ rated -1.00 over 1 session, weight -1.00, by "+shortIDOf(controltest.PeerID3.String())) {
		t.Errorf("trust why:\n%s", out)
	}
	out = d.ok("trust")
	if !strings.Contains(out, "PEER") || !strings.Contains(out, "-0.50") {
		t.Errorf("trust list: %q", out)
	}
}
