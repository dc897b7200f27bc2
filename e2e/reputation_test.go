package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type trustScore struct {
	Peer         string  `json:"peer"`
	Value        float64 `json:"value"`
	Evidence     int     `json:"evidence"`
	Contributors []struct {
		Rater  string  `json:"rater"`
		Weight float64 `json:"weight"`
	} `json:"contributors"`
}

type rankedResult struct {
	ID       string  `json:"id"`
	Provider string  `json:"provider"`
	Score    float64 `json:"score"`
	Trust    float64 `json:"trust"`
	Rank     float64 `json:"rank"`
}

// TestReputation runs the reflect path across four real daemons: two
// providers offer the same GPU box; a consumer connects to one and rates
// the session -1; an observer that vouches for the consumer hears the
// rating by gossip, distrusts that provider, explains why, and ranks it
// below the equal one in its find results.
func TestReputation(t *testing.T) {
	root := t.TempDir()
	var ds []*daemon
	for i, name := range []string{"bad", "good", "consumer", "observer"} {
		var boot []string
		if i > 0 {
			boot = []string{ds[0].loopbackAddr()}
		}
		ds = append(ds, startDaemon(t, filepath.Join(root, name), boot...))
	}
	bad, good, cons, obs := ds[0], ds[1], ds[2], ds[3]
	peerID := func(d *daemon) string {
		var st status
		d.mustJSON(&st, "status")
		return st.PeerID
	}
	badID, goodID, consID := peerID(bad), peerID(good), peerID(cons)

	var badBox, goodBox struct {
		ID string `json:"id"`
	}
	bad.mustJSON(&badBox, "advertise", "--kind", "compute", "--name", "GPU box", "--tag", "gpu")
	good.mustJSON(&goodBox, "advertise", "--kind", "compute", "--name", "GPU box", "--tag", "gpu")

	// The observer vouches for the consumer, whom its participant knows.
	if out, code := obs.peerctl("trust", "add", consID); code != 0 || !strings.Contains(out, consID) {
		t.Fatalf("trust add: exit %d: %s", code, out)
	}

	poll(t, 30*time.Second, "the consumer finds the rated provider's box", func() bool {
		rs, _ := cons.find("kind:compute tag:gpu")
		return ids(rs)[badBox.ID]
	})
	var grant struct {
		Granted bool   `json:"granted"`
		Session string `json:"session"`
	}
	cons.mustJSON(&grant, "connect", badBox.ID)
	if !grant.Granted {
		t.Fatal("connect not granted")
	}
	var rating struct {
		Subject string  `json:"subject"`
		Score   float64 `json:"score"`
	}
	cons.mustJSON(&rating, "rate", grant.Session, "--score=-1", "--comment", "never answered")
	if rating.Subject != badID || rating.Score != -1 {
		t.Fatalf("rating: %+v", rating)
	}

	var ts trustScore
	poll(t, 30*time.Second, "the observer distrusts the rated provider", func() bool {
		obs.mustJSON(&ts, "trust", badID)
		return ts.Value < 0
	})
	if ts.Evidence != 1 || len(ts.Contributors) != 1 || ts.Contributors[0].Rater != consID {
		t.Fatalf("observer's trust in the rated provider: %+v", ts)
	}
	why, code := obs.peerctl("trust", "why", badID, "--no-trunc")
	if code != 0 || !strings.Contains(why, "rated -1.00 over 1 session") || !strings.Contains(why, consID+"  trust +") || !strings.Contains(why, "you vouched +1.00") {
		t.Fatalf("trust why: exit %d:\n%s", code, why)
	}

	// Ranked find: the equal provider first, the rated one below.
	var rs []rankedResult
	poll(t, 30*time.Second, "the observer finds both boxes", func() bool {
		out, _ := obs.peerctl("find", "kind:compute", "tag:gpu", "--timeout", "10s", "-o", "json")
		rs = rs[:0]
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			var r rankedResult
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("find output: %v\n%s", err, out)
			}
			rs = append(rs, r)
		}
		return len(rs) == 2
	})
	if rs[0].Provider != goodID || rs[1].Provider != badID || rs[1].Trust >= 0 || rs[1].Rank >= rs[0].Rank {
		t.Fatalf("ranked results, want %s first:\n%s", goodID, fmt.Sprint(rs))
	}
	// --min-trust leaves the distrusted provider out.
	out, code := obs.peerctl("find", "kind:compute", "tag:gpu", "--min-trust", "-0.1", "--timeout", "10s", "-o", "json")
	if code != 0 || strings.Contains(out, badID) || !strings.Contains(out, goodID) {
		t.Fatalf("find --min-trust -0.1: exit %d:\n%s", code, out)
	}
	// The rating survives the observer's restart.
	obs.stop()
	obs = startDaemon(t, obs.data, ds[0].loopbackAddr())
	obs.mustJSON(&ts, "trust", badID)
	if ts.Value >= 0 {
		t.Fatalf("after restart: %+v", ts)
	}
}
