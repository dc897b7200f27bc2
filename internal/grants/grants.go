// Package grants decides a provider's connect requests by its policy (open,
// allow-list or manual approval), issues sessions with signed receipts, and
// remembers them in the datastore.
package grants

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multibase"

	"github.com/pullnet/pullnet/protocol/connect"
	"github.com/pullnet/pullnet/protocol/signed"
	"github.com/pullnet/pullnet/protocol/tunnel"
	"github.com/pullnet/pullnet/resource"
)

// Policy modes.
const (
	Open      = "open"
	Allowlist = "allowlist"
	Manual    = "manual"
)

// DefaultLifetime is how long a session lasts when the policy sets none.
const DefaultLifetime = 24 * time.Hour

// MaxPending bounds the requests waiting for a decision, so a flood of
// requests cannot grow the provider's memory without end.
const MaxPending = 256

// Policy is how a provider decides connect requests.
type Policy struct {
	// Mode is Open, Allowlist or Manual. Empty means Open.
	Mode string
	// Allow lists the peers an Allowlist policy grants.
	Allow []peer.ID
	// Lifetime is how long a granted session lasts; zero means DefaultLifetime.
	Lifetime time.Duration
	// MinTrust declines consumers this node trusts less (trust runs from
	// -1 to +1, 0 for a peer it knows nothing of); zero means no minimum.
	// It applies before the mode: an allow-listed or manually approved
	// peer must also reach it.
	MinTrust float64
}

// Validate reports a policy that cannot be applied.
func (p Policy) Validate() error {
	switch p.Mode {
	case "", Open, Allowlist, Manual:
		if p.MinTrust < -1 || p.MinTrust > 1 || p.MinTrust != p.MinTrust {
			return fmt.Errorf("policy min_trust %v: want a value from -1 to 1", p.MinTrust)
		}
		return nil
	}
	return fmt.Errorf("policy %q: want open, allowlist or manual", p.Mode)
}

// Lookup finds one of the provider's own resources.
type Lookup func(id string) (signed.Record, bool)

// ServiceLookup finds the local address of a TCP resource's service.
type ServiceLookup func(id string) (string, bool)

// Session is a granted session as the provider remembers it.
type Session struct {
	ID         string    `json:"id"`
	ResourceID string    `json:"resource_id"`
	Consumer   string    `json:"consumer"`
	Issued     time.Time `json:"issued"`
	Expires    time.Time `json:"expires"`
	Receipt    []byte    `json:"receipt"`
	Revoked    bool      `json:"revoked,omitempty"`
}

// Request is a connect request waiting for the participant's decision.
type Request struct {
	Session    string
	ResourceID string
	Consumer   peer.ID
	Message    string
	Received   time.Time
}

type pending struct {
	Request
	decided chan decision
}

type decision struct {
	grant  bool
	reason string
}

// ErrUnknownRequest: no request waits under that session ID.
var ErrUnknownRequest = errors.New("no pending request with that session")

var sessionPrefix = ds.NewKey("/pullnet/sessions/granted")

// Manager decides connect requests. It implements connect.Handler.
type Manager struct {
	key     crypto.PrivKey
	self    peer.ID
	lookup  Lookup
	service ServiceLookup
	store   ds.Datastore
	log     *slog.Logger
	now     func() time.Time
	trust   func(peer.ID) float64

	mu       sync.Mutex
	policy   Policy
	pending  map[string]*pending
	sessions map[string]*Session // granted sessions, loaded from the store
}

// Config is what a Manager needs.
type Config struct {
	// Key signs receipts: the provider's identity.
	Key    crypto.PrivKey
	Policy Policy
	// Lookup finds the provider's resources; Service their service addresses.
	Lookup  Lookup
	Service ServiceLookup
	// Store keeps granted sessions.
	Store ds.Datastore
	// Trust is this node's trust in a peer, for Policy.MinTrust; nil
	// counts every peer as unknown (0).
	Trust  func(peer.ID) float64
	Logger *slog.Logger
}

// New returns a manager, loading the sessions it granted before.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if err := cfg.Policy.Validate(); err != nil {
		return nil, err
	}
	self, err := peer.IDFromPrivateKey(cfg.Key)
	if err != nil {
		return nil, err
	}
	if cfg.Trust == nil {
		cfg.Trust = func(peer.ID) float64 { return 0 }
	}
	m := &Manager{key: cfg.Key, self: self, lookup: cfg.Lookup, service: cfg.Service, store: cfg.Store, log: cfg.Logger, trust: cfg.Trust,
		now: time.Now, policy: cfg.Policy, pending: map[string]*pending{}, sessions: map[string]*Session{}}
	res, err := cfg.Store.Query(ctx, dsq.Query{Prefix: sessionPrefix.String()})
	if err != nil {
		return nil, fmt.Errorf("load sessions: %w", err)
	}
	defer res.Close()
	for e := range res.Next() {
		if e.Error != nil {
			return nil, fmt.Errorf("load sessions: %w", e.Error)
		}
		var s Session
		if err := json.Unmarshal(e.Value, &s); err != nil {
			return nil, fmt.Errorf("load session %s: %w", e.Key, err)
		}
		m.sessions[s.ID] = &s
	}
	return m, nil
}

// Policy returns the policy in force.
func (m *Manager) Policy() Policy {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.policy
}

// SetPolicy changes the policy for requests that arrive from now on.
func (m *Manager) SetPolicy(p Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	m.policy = p
	m.mu.Unlock()
	return nil
}

// HandleConnect decides one request. Under the manual policy it waits for
// Approve or Decline until ctx ends, and then declines.
func (m *Manager) HandleConnect(ctx context.Context, from peer.ID, req connect.Request) connect.Response {
	rec, ok := m.lookup(req.ResourceID)
	if !ok {
		return connect.Response{Reason: fmt.Sprintf("unknown resource %s: this provider does not offer it (withdrawn?)", req.ResourceID)}
	}
	if rec.Resource.Expired(m.now()) {
		return connect.Response{Reason: fmt.Sprintf("resource %s has expired", req.ResourceID)}
	}
	policy := m.Policy()
	if policy.MinTrust != 0 && from != m.self {
		if t := m.trust(from); t < policy.MinTrust {
			return connect.Response{Reason: fmt.Sprintf("this provider's trust in you is %.2f, below its minimum of %.2f: build trust with rated sessions elsewhere, or ask its participant to `peerctl trust add` you", t, policy.MinTrust)}
		}
	}
	session := newSessionID()
	switch policy.Mode {
	case Allowlist:
		if !slices.Contains(policy.Allow, from) {
			return connect.Response{Reason: "not on the provider's allow-list"}
		}
	case Manual:
		d, err := m.wait(ctx, Request{Session: session, ResourceID: req.ResourceID, Consumer: from, Message: req.Message, Received: m.now()})
		if err != nil {
			return connect.Response{Reason: err.Error()}
		}
		if !d.grant {
			reason := d.reason
			if reason == "" {
				reason = "declined by the provider"
			}
			return connect.Response{Reason: reason}
		}
	}
	resp, err := m.grant(ctx, session, rec.Resource, from, policy.Lifetime)
	if err != nil {
		m.log.Error("grant failed", "resource", req.ResourceID, "consumer", from, "err", err)
		return connect.Response{Reason: "provider could not record the session"}
	}
	return resp
}

func (m *Manager) wait(ctx context.Context, req Request) (decision, error) {
	p := &pending{Request: req, decided: make(chan decision, 1)}
	m.mu.Lock()
	if len(m.pending) >= MaxPending {
		m.mu.Unlock()
		return decision{}, errors.New("provider has too many requests waiting for approval; try later")
	}
	m.pending[req.Session] = p
	m.mu.Unlock()
	m.log.Info("connect request waits for approval", "session", req.Session, "resource", req.ResourceID, "consumer", req.Consumer)
	defer func() {
		m.mu.Lock()
		delete(m.pending, req.Session)
		m.mu.Unlock()
	}()
	select {
	case d := <-p.decided:
		return d, nil
	case <-ctx.Done():
		return decision{}, errors.New("no decision from the provider in time (manual approval)")
	}
}

func (m *Manager) grant(ctx context.Context, session string, r resource.Resource, consumer peer.ID, lifetime time.Duration) (connect.Response, error) {
	if lifetime <= 0 {
		lifetime = DefaultLifetime
	}
	now := m.now().UTC().Truncate(time.Second)
	rc := signed.Receipt{Session: session, ResourceID: r.ID, Provider: m.self, Consumer: consumer, Issued: now, Expires: now.Add(lifetime)}
	receipt, err := signed.SealReceipt(m.key, rc)
	if err != nil {
		return connect.Response{}, err
	}
	s := &Session{ID: session, ResourceID: r.ID, Consumer: consumer.String(), Issued: rc.Issued, Expires: rc.Expires, Receipt: receipt}
	if err := m.save(ctx, s); err != nil {
		return connect.Response{}, err
	}
	return connect.Response{Granted: true, Session: session, Access: r.Access, Receipt: receipt}, nil
}

// save stores s durably, then makes it visible.
func (m *Manager) save(ctx context.Context, s *Session) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	key := sessionPrefix.ChildString(s.ID)
	if err := m.store.Put(ctx, key, b); err != nil {
		return fmt.Errorf("store session: %w", err)
	}
	if err := m.store.Sync(ctx, key); err != nil {
		return fmt.Errorf("sync session: %w", err)
	}
	m.mu.Lock()
	m.sessions[s.ID] = s
	m.mu.Unlock()
	return nil
}

// Authorize checks a tunnel token offline: it must be a receipt this
// provider signed, for the peer presenting it, unexpired and unrevoked, for
// a TCP resource the provider still offers. The error text is the reason
// the consumer is told.
func (m *Manager) Authorize(from peer.ID, token []byte) (tunnel.Grant, error) {
	rc, err := signed.OpenReceipt(token)
	switch {
	case err != nil:
		return tunnel.Grant{}, errors.New("token does not verify")
	case rc.Provider != m.self:
		return tunnel.Grant{}, errors.New("token was not issued by this provider")
	case rc.Consumer != from:
		return tunnel.Grant{}, errors.New("token belongs to another peer")
	case !rc.Expires.IsZero() && m.now().After(rc.Expires):
		return tunnel.Grant{}, fmt.Errorf("session expired at %s", rc.Expires.Format(time.RFC3339))
	}
	m.mu.Lock()
	s, ok := m.sessions[rc.Session]
	revoked := ok && s.Revoked
	m.mu.Unlock()
	switch {
	case !ok || s.ResourceID != rc.ResourceID || s.Consumer != from.String():
		return tunnel.Grant{}, errors.New("unknown session")
	case revoked:
		return tunnel.Grant{}, errors.New("session revoked by the provider")
	}
	rec, ok := m.lookup(rc.ResourceID)
	if !ok {
		return tunnel.Grant{}, errors.New("resource withdrawn by the provider")
	}
	if rec.Resource.Access.Type != resource.AccessTCP {
		return tunnel.Grant{}, errors.New("resource is not a TCP service")
	}
	addr, ok := m.service(rc.ResourceID)
	if !ok {
		return tunnel.Grant{}, errors.New("provider has no service address for the resource")
	}
	return tunnel.Grant{Session: rc.Session, Target: addr}, nil
}

// Revoke ends a granted session: no tunnel opens under it again. Closing
// the live ones is the caller's job (tunnel.Service.Revoke).
func (m *Manager) Revoke(ctx context.Context, id string) error {
	m.mu.Lock()
	s, ok := m.sessions[id]
	var cp Session
	if ok {
		cp = *s
	}
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownSession, id)
	}
	cp.Revoked = true
	return m.save(ctx, &cp)
}

// ErrUnknownSession: this provider granted no session with that ID.
var ErrUnknownSession = errors.New("no session granted with that ID")

// Sessions lists the sessions this provider granted, newest first.
func (m *Manager) Sessions() []Session {
	m.mu.Lock()
	out := make([]Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		out = append(out, *s)
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Issued.After(out[j].Issued) })
	return out
}

// Pending lists the requests waiting for a decision, oldest first.
func (m *Manager) Pending() []Request {
	m.mu.Lock()
	out := make([]Request, 0, len(m.pending))
	for _, p := range m.pending {
		out = append(out, p.Request)
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Received.Before(out[j].Received) })
	return out
}

// Approve grants the waiting request.
func (m *Manager) Approve(session string) error { return m.decide(session, decision{grant: true}) }

// Decline refuses the waiting request with reason.
func (m *Manager) Decline(session, reason string) error {
	return m.decide(session, decision{reason: strings.TrimSpace(reason)})
}

func (m *Manager) decide(session string, d decision) error {
	m.mu.Lock()
	p, ok := m.pending[session]
	if ok {
		delete(m.pending, session)
	}
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownRequest, session)
	}
	p.decided <- d
	return nil
}

// newSessionID returns a random, URL-safe session ID.
func newSessionID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	s, _ := multibase.Encode(multibase.Base32, b[:])
	return s
}
