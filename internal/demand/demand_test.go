package demand

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC)} }

func TestScriptedFinds(t *testing.T) {
	c := newClock()
	r := New(Options{Now: c.now})
	for range 3 {
		r.FindRun([]string{"tag:gpu"}, "tag:gpu", 2)
	}
	r.FindRun([]string{"tag:nothing"}, "tag:nothing", 0)
	r.FindRun([]string{"tag:nothing"}, "tag:nothing", 0)
	r.Served([]string{"kind:compute", "tag:gpu"}, "kind:compute tag:gpu", 1, []string{"r1"})
	r.Served([]string{"tag:gpu"}, "tag:gpu", 0, nil)
	r.ConnectRequested("r1")
	r.ConnectGranted("r1")

	rep := r.Report(0, 0)
	if rep.FindsRun != 5 || rep.FindsUnmet != 2 || rep.FindsServed != 2 || rep.ResultsServed != 1 ||
		rep.ConnectsRequested != 1 || rep.ConnectsGranted != 1 {
		t.Fatalf("report = %+v", rep)
	}
	if len(rep.Unmet) != 1 || rep.Unmet[0] != (Count{Key: "tag:nothing", Count: 2}) {
		t.Fatalf("unmet = %+v", rep.Unmet)
	}
	if len(rep.TopRunTerms) != 2 || rep.TopRunTerms[0] != (Count{Key: "tag:gpu", Count: 3, Results: 6}) {
		t.Fatalf("run terms = %+v", rep.TopRunTerms)
	}
	if len(rep.TopServedTerms) != 2 || rep.TopServedTerms[0] != (Count{Key: "tag:gpu", Count: 2, Results: 1}) ||
		rep.TopServedTerms[1] != (Count{Key: "kind:compute", Count: 1, Results: 1}) {
		t.Fatalf("served terms = %+v", rep.TopServedTerms)
	}
	if len(rep.TopServedQueries) != 0 {
		t.Fatalf("whole queries kept without opt-in: %+v", rep.TopServedQueries)
	}
	if len(rep.Resources) != 1 || rep.Resources[0] != (ResourceCount{ID: "r1", Found: 1, Requested: 1, Granted: 1}) {
		t.Fatalf("resources = %+v", rep.Resources)
	}
}

func TestRecordQueriesOptIn(t *testing.T) {
	r := New(Options{RecordQueries: true})
	r.Served([]string{"tag:gpu", "region=eu"}, "tag:gpu region=eu", 1, nil)
	r.Served([]string{"tag:gpu", "region=eu"}, "tag:gpu region=eu", 1, nil)
	rep := r.Report(0, 0)
	if len(rep.TopServedQueries) != 1 || rep.TopServedQueries[0] != (Count{Key: "tag:gpu region=eu", Count: 2, Results: 2}) {
		t.Fatalf("served queries = %+v", rep.TopServedQueries)
	}
	// Without the opt-in, a snapshot that has whole queries loses them.
	b, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	off := New(Options{})
	if err := off.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if rep := off.Report(0, 0); len(rep.TopServedQueries) != 0 || rep.FindsServed != 2 {
		t.Fatalf("restored without opt-in: %+v", rep)
	}
}

func TestSince(t *testing.T) {
	c := newClock()
	r := New(Options{Now: c.now})
	r.FindRun([]string{"tag:old"}, "tag:old", 0) // 12:30
	c.advance(3 * time.Hour)                     // 15:30
	r.FindRun([]string{"tag:new"}, "tag:new", 1)
	c.advance(10 * time.Minute)

	rep := r.Report(time.Hour, 0)
	if rep.FindsRun != 1 || rep.FindsUnmet != 0 || len(rep.TopRunTerms) != 1 || rep.TopRunTerms[0].Key != "tag:new" {
		t.Fatalf("last hour: %+v", rep)
	}
	if want := time.Date(2026, 3, 1, 14, 0, 0, 0, time.UTC); !rep.Since.Equal(want) {
		t.Fatalf("since = %v, want %v", rep.Since, want)
	}
	if rep := r.Report(24*time.Hour, 0); rep.FindsRun != 2 || rep.FindsUnmet != 1 {
		t.Fatalf("last day: %+v", rep)
	}
	// Past the retention window, buckets go but totals stay.
	c.advance(8 * 24 * time.Hour)
	r.FindRun([]string{"tag:new"}, "tag:new", 1)
	if rep := r.Report(30*24*time.Hour, 0); rep.FindsRun != 1 {
		t.Fatalf("since beyond retention: %+v", rep)
	}
	if rep := r.Report(0, 0); rep.FindsRun != 3 || rep.FindsUnmet != 1 || rep.TopRunTerms[0] != (Count{Key: "tag:new", Count: 2, Results: 2}) {
		t.Fatalf("totals: %+v", rep)
	}
	if n := len(r.findsRun.Points); n != 1 {
		t.Fatalf("%d buckets kept past retention", n)
	}
}

func TestCaps(t *testing.T) {
	r := New(Options{MaxKeys: 10})
	for range 5 {
		r.Served([]string{"tag:popular"}, "", 1, []string{"mine"})
	}
	for i := range 1000 {
		term := fmt.Sprintf("tag:random%d", i)
		r.Served([]string{term}, "", 0, []string{fmt.Sprintf("res%d", i)})
		r.FindRun([]string{term}, term, 0)
	}
	if n := len(r.servedTerms.m); n > 10 {
		t.Fatalf("served terms grew to %d", n)
	}
	if n := len(r.runTerms.m); n > 10 {
		t.Fatalf("run terms grew to %d", n)
	}
	if n := len(r.unmet.m); n > 10 {
		t.Fatalf("unmet grew to %d", n)
	}
	if n := len(r.resources.m); n > 10 {
		t.Fatalf("resources grew to %d", n)
	}
	rep := r.Report(0, 3)
	if len(rep.TopServedTerms) != 3 || rep.TopServedTerms[0] != (Count{Key: "tag:popular", Count: 5, Results: 5}) {
		t.Fatalf("the most counted term was evicted: %+v", rep.TopServedTerms)
	}
	if len(rep.Resources) != 3 || rep.Resources[0].ID != "mine" || rep.Resources[0].Found != 5 {
		t.Fatalf("resources = %+v", rep.Resources)
	}
	if rep.FindsServed != 1005 || rep.FindsRun != 1000 || rep.FindsUnmet != 1000 {
		t.Fatalf("scalar counts = %+v", rep)
	}
	if all := r.Report(0, -1); len(all.TopServedTerms) != 10 {
		t.Fatalf("top -1 listed %d of 10", len(all.TopServedTerms))
	}
}

func TestTopOrder(t *testing.T) {
	r := New(Options{})
	for i, term := range []string{"a", "b", "c", "d"} {
		for range i + 1 {
			r.FindRun([]string{term}, term, 1)
		}
	}
	rep := r.Report(0, 2)
	if len(rep.TopRunTerms) != 2 || rep.TopRunTerms[0].Key != "d" || rep.TopRunTerms[1].Key != "c" {
		t.Fatalf("top 2 = %+v", rep.TopRunTerms)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	c := newClock()
	r := New(Options{Now: c.now})
	r.FindRun([]string{"tag:gpu"}, "tag:gpu", 0)
	r.Served([]string{"tag:gpu"}, "tag:gpu", 1, []string{"r1"})
	r.ConnectRequested("r1")
	b, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	c.advance(time.Hour)
	r2 := New(Options{Now: c.now})
	if err := r2.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	got, want := r2.Report(2*time.Hour, 0), r.Report(2*time.Hour, 0)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("restored %+v\nwant %+v", got, want)
	}
	if err := r2.UnmarshalBinary([]byte("{")); err == nil {
		t.Fatal("a garbled snapshot was accepted")
	}
}

func TestConcurrent(t *testing.T) {
	r := New(Options{MaxKeys: 50})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				term := fmt.Sprintf("t%d", (g*200+i)%100)
				r.FindRun([]string{term}, term, i%2)
				r.Served([]string{term}, term, 1, []string{term})
				r.ConnectRequested(term)
				_ = r.Report(time.Hour, 5)
			}
		}()
	}
	wg.Wait()
	if rep := r.Report(0, 0); rep.FindsRun != 1600 || rep.FindsServed != 1600 || rep.ConnectsRequested != 1600 {
		t.Fatalf("report = %+v", rep)
	}
}
