// Package forward runs a consumer's port forwards: a local TCP listener per
// session whose every connection is carried to the provider's service
// through a tunnel. Forwards are remembered in the datastore and restored
// when the node starts again.
package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/pullnet/pullnet/internal/store"
	"github.com/pullnet/pullnet/protocol/tunnel"
)

// Spec is a forward as it is remembered.
type Spec struct {
	Session    string    `json:"session"`
	ResourceID string    `json:"resource_id"`
	Provider   string    `json:"provider"`
	Listen     string    `json:"listen"` // the bound address, so a restore gets the same port
	Created    time.Time `json:"created"`
}

// Info is a forward's state.
type Info struct {
	Spec
	BytesIn, BytesOut     int64
	ConnsOpen, ConnsTotal int64
	// Err is the last error a connection met, or why the forward could not
	// be restored; empty when all is well.
	Err string
	// Active is false for a forward that could not be restored.
	Active bool
}

// Dialer opens a tunnel stream for a session.
type Dialer func(ctx context.Context, session string) (network.Stream, error)

// DialTimeout bounds opening the tunnel for one local connection.
const DialTimeout = 30 * time.Second

// Errors of Open and Close.
var (
	ErrUnknown = errors.New("no forward for that session")
	ErrExists  = errors.New("the session already has a forward")
)

// Manager runs forwards.
type Manager struct {
	dial  Dialer
	table store.Table[Spec]
	log   *slog.Logger

	mu   sync.Mutex
	fwds map[string]*fwd
}

type fwd struct {
	spec     Spec
	ln       net.Listener
	counters tunnel.Counters
	cancel   context.CancelFunc
	done     chan struct{}

	mu     sync.Mutex
	err    string
	active bool
	conns  map[net.Conn]struct{}
}

// New returns a manager that keeps its forwards in d.
func New(d ds.Datastore, dial Dialer, logger *slog.Logger) *Manager {
	return &Manager{dial: dial, table: store.Table[Spec]{DS: d, Prefix: ds.NewKey("/pullnet/forwards")}, log: logger, fwds: map[string]*fwd{}}
}

// Restore reopens the forwards remembered in the datastore. One that cannot
// listen again stays listed, inactive, with the reason.
func (m *Manager) Restore(ctx context.Context) error {
	specs, err := m.table.List(ctx)
	if err != nil {
		return fmt.Errorf("restore forwards: %w", err)
	}
	for _, spec := range specs {
		if _, err := m.start(spec); err != nil {
			m.log.Warn("forward not restored", "session", spec.Session, "listen", spec.Listen, "err", err)
			m.mu.Lock()
			m.fwds[spec.Session] = &fwd{spec: spec, err: "not restored: " + err.Error(), done: closedChan()}
			m.mu.Unlock()
			continue
		}
		m.log.Info("forward restored", "session", spec.Session, "listen", spec.Listen)
	}
	return nil
}

// Open starts a forward for a session on listen (host:port; port 0 picks
// one) and remembers it. A session has at most one forward.
func (m *Manager) Open(ctx context.Context, spec Spec) (Info, error) {
	m.mu.Lock()
	old, exists := m.fwds[spec.Session]
	m.mu.Unlock()
	if exists && old.isActive() {
		return Info{}, fmt.Errorf("%w on %s (close it first)", ErrExists, old.spec.Listen)
	}
	if spec.Created.IsZero() {
		spec.Created = time.Now().UTC().Truncate(time.Second)
	}
	f, err := m.start(spec)
	if err != nil {
		return Info{}, err
	}
	if err := m.table.Put(ctx, spec.Session, f.spec); err != nil {
		m.stop(f)
		return Info{}, err
	}
	return f.info(), nil
}

func (m *Manager) start(spec Spec) (*fwd, error) {
	ln, err := net.Listen("tcp", spec.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", spec.Listen, err)
	}
	spec.Listen = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	f := &fwd{spec: spec, ln: ln, cancel: cancel, done: make(chan struct{}), active: true, conns: map[net.Conn]struct{}{}}
	m.mu.Lock()
	m.fwds[spec.Session] = f
	m.mu.Unlock()
	go m.serve(ctx, f)
	return f, nil
}

func (m *Manager) serve(ctx context.Context, f *fwd) {
	defer close(f.done)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return // closed
		}
		tcp, ok := c.(*net.TCPConn)
		if !ok {
			c.Close()
			continue
		}
		f.mu.Lock()
		f.conns[c] = struct{}{}
		f.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				f.mu.Lock()
				delete(f.conns, c)
				f.mu.Unlock()
			}()
			m.carry(ctx, f, tcp)
		}()
	}
}

// carry tunnels one local connection. If the tunnel cannot open, the local
// connection is closed at once, so the application sees a refused
// connection instead of a hang, and the reason is kept for `forwards`.
func (m *Manager) carry(ctx context.Context, f *fwd, c *net.TCPConn) {
	dctx, cancel := context.WithTimeout(ctx, DialTimeout)
	str, err := m.dial(dctx, f.spec.Session)
	cancel()
	if err != nil {
		f.setErr(err.Error())
		m.log.Info("forward: tunnel did not open", "session", f.spec.Session, "err", err)
		c.SetLinger(0)
		c.Close()
		return
	}
	f.counters.Open.Add(1)
	f.counters.Total.Add(1)
	tunnel.Pipe(str, c, &f.counters.In, &f.counters.Out)
	f.counters.Open.Add(-1)
}

// Close stops a forward, closes its connections and forgets it.
func (m *Manager) Close(ctx context.Context, session string) error {
	m.mu.Lock()
	f, ok := m.fwds[session]
	delete(m.fwds, session)
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknown, session)
	}
	m.stop(f)
	return m.table.Delete(ctx, session)
}

// Shutdown stops every forward but remembers them for Restore.
func (m *Manager) Shutdown() {
	m.mu.Lock()
	fwds := make([]*fwd, 0, len(m.fwds))
	for _, f := range m.fwds {
		fwds = append(fwds, f)
	}
	m.mu.Unlock()
	for _, f := range fwds {
		m.stop(f)
	}
}

func (m *Manager) stop(f *fwd) {
	f.mu.Lock()
	f.active = false
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	if f.ln != nil {
		f.ln.Close()
		f.cancel()
	}
	<-f.done
}

// List returns every forward, ordered by creation.
func (m *Manager) List() []Info {
	m.mu.Lock()
	out := make([]Info, 0, len(m.fwds))
	for _, f := range m.fwds {
		out = append(out, f.info())
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out
}

func (f *fwd) info() Info {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Info{Spec: f.spec, BytesIn: f.counters.In.Load(), BytesOut: f.counters.Out.Load(),
		ConnsOpen: f.counters.Open.Load(), ConnsTotal: f.counters.Total.Load(), Err: f.err, Active: f.active}
}

func (f *fwd) setErr(s string) {
	f.mu.Lock()
	f.err = s
	f.mu.Unlock()
}

func (f *fwd) isActive() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.active
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}
