package watches_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/pullnet/pullnet/internal/watches"
	"github.com/pullnet/pullnet/node"
	"github.com/pullnet/pullnet/resource"
)

// fakeWatcher runs watches whose events the test sends: Send delivers one
// event to the running watch of a query.
type fakeWatcher struct {
	mu      sync.Mutex
	feeds   map[string]chan node.WatchEvent
	started chan string // the query of each watch that starts
	ended   chan string // the query of each watch that ends
}

func newFakeWatcher() *fakeWatcher {
	return &fakeWatcher{feeds: map[string]chan node.WatchEvent{}, started: make(chan string, 100), ended: make(chan string, 100)}
}

func (f *fakeWatcher) feed(q string) chan node.WatchEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch, ok := f.feeds[q]
	if !ok {
		ch = make(chan node.WatchEvent)
		f.feeds[q] = ch
	}
	return ch
}

func (f *fakeWatcher) Watch(ctx context.Context, q string, _ node.WatchOptions) iter.Seq2[node.WatchEvent, error] {
	return func(yield func(node.WatchEvent, error) bool) {
		f.started <- q
		defer func() { f.ended <- q }()
		feed := f.feed(q)
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-feed:
				if !yield(ev, nil) {
					return
				}
			}
		}
	}
}

// send hands ev to the watch of q, failing the test if none takes it.
func (f *fakeWatcher) send(t *testing.T, q string, ev node.WatchEvent) {
	t.Helper()
	select {
	case f.feed(q) <- ev:
	case <-time.After(10 * time.Second):
		t.Fatalf("no watch of %q took the event", q)
	}
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func event(typ, name string) node.WatchEvent {
	return node.WatchEvent{Type: typ, Resource: resource.Resource{ID: "id-" + name, Kind: "compute", Name: name}, At: time.Now()}
}

func newStore() ds.Datastore { return dssync.MutexWrap(ds.NewMapDatastore()) }

const gpuQuery = "kind:compute tag:gpu"

func TestCreateValidatesAndDedups(t *testing.T) {
	fw := newFakeWatcher()
	r := watches.New(newStore(), fw, nil)
	defer r.Close()
	ctx := context.Background()

	for _, bad := range []string{"", "   ", `"unterminated`} {
		if _, err := r.Create(ctx, bad); !errors.Is(err, node.ErrInvalid) {
			t.Errorf("Create(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	a, err := r.Create(ctx, gpuQuery)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, fw.started, "the watch to start")
	b, err := r.Create(ctx, "  kind:compute   tag:gpu ")
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID || a.Query != gpuQuery {
		t.Errorf("second Create = %+v, want the first watch %+v", b, a)
	}
	if got := r.List(); len(got) != 1 {
		t.Errorf("List = %+v, want one watch", got)
	}
}

func TestFanOutAndCounts(t *testing.T) {
	fw := newFakeWatcher()
	r := watches.New(newStore(), fw, nil)
	defer r.Close()
	info, err := r.Create(context.Background(), gpuQuery)
	if err != nil {
		t.Fatal(err)
	}
	s1, cancel1, err := r.Subscribe(info.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	defer cancel1()
	s2, cancel2, err := r.Subscribe(info.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	fw.send(t, gpuQuery, event(node.EventAdded, "a"))
	for i, s := range []<-chan node.WatchEvent{s1, s2} {
		if ev := wait(t, s, fmt.Sprint("subscriber ", i)); ev.Type != node.EventAdded || ev.Resource.Name != "a" {
			t.Errorf("subscriber %d got %+v", i, ev)
		}
	}
	cancel2()
	if _, ok := <-s2; ok {
		t.Error("a cancelled subscription's channel is still open")
	}
	fw.send(t, gpuQuery, event(node.EventRemoved, "a"))
	if ev := wait(t, s1, "the removal"); ev.Type != node.EventRemoved {
		t.Errorf("got %+v, want the removal", ev)
	}
	got, err := r.Get(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Events != 2 || got.LastEvent.IsZero() || got.Subscribers != 1 {
		t.Errorf("Get = %+v, want 2 events, a last event and 1 subscriber", got)
	}

	// A late subscriber asking for a replay sees the recent events.
	s3, cancel3, err := r.Subscribe(info.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	defer cancel3()
	for _, want := range []string{node.EventAdded, node.EventRemoved} {
		if ev := wait(t, s3, "a replayed event"); ev.Type != want {
			t.Errorf("replayed %+v, want %s", ev, want)
		}
	}

	if _, _, err := r.Subscribe("nope", false); !errors.Is(err, node.ErrNotFound) {
		t.Errorf("Subscribe(unknown) = %v, want ErrNotFound", err)
	}
}

func TestRingKeepsTheLatest(t *testing.T) {
	fw := newFakeWatcher()
	r := watches.New(newStore(), fw, nil)
	defer r.Close()
	info, err := r.Create(context.Background(), gpuQuery)
	if err != nil {
		t.Fatal(err)
	}
	n := watches.RingSize + 20
	for i := range n {
		fw.send(t, gpuQuery, event(node.EventUpdated, fmt.Sprint(i)))
	}
	// The watch takes the next event only after delivering the last one.
	sync1, cancelSync, _ := r.Subscribe(info.ID, false)
	fw.send(t, gpuQuery, event(node.EventUpdated, "last"))
	wait(t, sync1, "the last event")
	cancelSync()

	s, cancel, err := r.Subscribe(info.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	first := wait(t, s, "the oldest replayed event")
	if want := fmt.Sprint(n + 1 - watches.RingSize); first.Resource.Name != want {
		t.Errorf("oldest replayed event is %q, want %q", first.Resource.Name, want)
	}
	if got := len(s) + 1; got != watches.RingSize {
		t.Errorf("replayed %d events, want %d", got, watches.RingSize)
	}
}

func TestSlowSubscriberDoesNotBlock(t *testing.T) {
	fw := newFakeWatcher()
	r := watches.New(newStore(), fw, nil)
	defer r.Close()
	info, err := r.Create(context.Background(), gpuQuery)
	if err != nil {
		t.Fatal(err)
	}
	slow, cancelSlow, err := r.Subscribe(info.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	defer cancelSlow()
	fast, cancelFast, err := r.Subscribe(info.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	defer cancelFast()
	n := watches.SubscriberBuffer + 10
	for i := range n {
		fw.send(t, gpuQuery, event(node.EventUpdated, fmt.Sprint(i)))
		// The fast one keeps up: it reads every event.
		if ev := wait(t, fast, "an event"); ev.Resource.Name != fmt.Sprint(i) {
			t.Fatalf("fast subscriber got %q, want %d", ev.Resource.Name, i)
		}
	}
	if len(slow) != watches.SubscriberBuffer {
		t.Errorf("slow subscriber holds %d events, want %d", len(slow), watches.SubscriberBuffer)
	}
	got, _ := r.Get(info.ID)
	if got.Dropped != 10 || got.Events != int64(n) {
		t.Errorf("Get = %+v, want 10 dropped of %d", got, n)
	}
}

func TestPersistence(t *testing.T) {
	store := newStore()
	ctx := context.Background()
	fw := newFakeWatcher()
	r := watches.New(store, fw, nil)
	a, err := r.Create(ctx, gpuQuery)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Create(ctx, "kind:dataset")
	if err != nil {
		t.Fatal(err)
	}
	wait(t, fw.started, "a watch to start")
	wait(t, fw.started, "a watch to start")
	if err := r.Delete(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, b.ID); !errors.Is(err, node.ErrNotFound) {
		t.Errorf("second Delete = %v, want ErrNotFound", err)
	}
	if q := wait(t, fw.ended, "the deleted watch to end"); q != "kind:dataset" {
		t.Errorf("watch of %q ended, want kind:dataset", q)
	}
	s, _, err := r.Subscribe(a.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if _, ok := <-s; ok {
		t.Error("subscription still open after Close")
	}
	if _, err := r.Create(ctx, "kind:other"); !errors.Is(err, node.ErrClosed) {
		t.Errorf("Create after Close = %v, want ErrClosed", err)
	}

	// A new registry on the same store runs the saved watch again.
	fw2 := newFakeWatcher()
	r2 := watches.New(store, fw2, nil)
	defer r2.Close()
	if got := r2.List(); len(got) != 0 {
		t.Errorf("List before Start = %+v, want nothing", got)
	}
	if err := r2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if q := wait(t, fw2.started, "the restored watch"); q != gpuQuery {
		t.Errorf("restored a watch of %q, want %q", q, gpuQuery)
	}
	got := r2.List()
	if len(got) != 1 || got[0].ID != a.ID || got[0].Query != gpuQuery || !got[0].Created.Equal(a.Created) {
		t.Fatalf("List after restart = %+v, want %+v", got, a)
	}
	s2, cancel, err := r2.Subscribe(a.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	fw2.send(t, gpuQuery, event(node.EventAdded, "x"))
	if ev := wait(t, s2, "an event of the restored watch"); ev.Resource.Name != "x" {
		t.Errorf("got %+v", ev)
	}
	if err := r2.Delete(ctx, a.ID); err != nil {
		t.Fatal(err)
	}

	r3 := watches.New(store, newFakeWatcher(), nil)
	defer r3.Close()
	if err := r3.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r3.List(); len(got) != 0 {
		t.Errorf("List after Delete and restart = %+v, want nothing", got)
	}
}
