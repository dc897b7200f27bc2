package e2e

import (
	"testing"
	"time"
)

type wantJSON struct {
	ID          string `json:"id"`
	Owner       string `json:"owner"`
	Query       string `json:"query"`
	Description string `json:"description"`
	Matches     []struct {
		ID string `json:"id"`
	} `json:"matches"`
}

// TestWantsAcrossDaemons: a want published on daemon A is listed by provider
// B's wants (B's resources share its terms), B advertises a matching
// resource and A's wants --mine shows the match; unwant withdraws it.
func TestWantsAcrossDaemons(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three daemons")
	}
	ds := chainOf3(t)
	a, b := ds[0], ds[2]

	var small struct {
		ID string `json:"id"`
	}
	b.mustJSON(&small, "advertise", "--kind", "compute", "--name", "small GPU box", "--tag", "gpu", "--attr", "gpu.count=1")
	var w struct {
		ID string `json:"id"`
	}
	a.mustJSON(&w, "want", "kind:compute", "tag:gpu", "gpu.count>=2", "--desc", "two GPUs for a week", "--expires", "7d")
	if w.ID == "" {
		t.Fatal("want returned no ID")
	}
	var aStatus struct {
		PeerID string `json:"peer_id"`
	}
	a.mustJSON(&aStatus, "status")

	listed := func() bool {
		var ws []wantJSON
		b.mustJSON(&ws, "wants", "--timeout", "5s")
		for _, x := range ws {
			if x.ID == w.ID {
				if x.Description != "two GPUs for a week" || x.Query != "kind:compute tag:gpu gpu.count>=2" ||
					(aStatus.PeerID != "" && x.Owner != aStatus.PeerID) {
					t.Fatalf("B lists %+v", x)
				}
				return true
			}
		}
		return false
	}
	poll(t, 90*time.Second, "provider B to list A's want", listed)

	var big struct {
		ID string `json:"id"`
	}
	b.mustJSON(&big, "advertise", "--kind", "compute", "--name", "GPU box", "--tag", "gpu", "--attr", "gpu.count=2")
	poll(t, 90*time.Second, "A's want to show B's matching resource", func() bool {
		var mine []wantJSON
		a.mustJSON(&mine, "wants", "--mine")
		return len(mine) == 1 && mine[0].ID == w.ID && len(mine[0].Matches) == 1 && mine[0].Matches[0].ID == big.ID
	})

	if out, code := a.peerctl("unwant", w.ID); code != 0 {
		t.Fatalf("unwant: exit %d\n%s", code, out)
	}
	var mine []wantJSON
	a.mustJSON(&mine, "wants", "--mine")
	if len(mine) != 0 {
		t.Fatalf("wants --mine after unwant: %+v", mine)
	}
	if listed() {
		t.Fatal("B still lists the withdrawn want")
	}
}
