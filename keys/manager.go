package keys

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// DefaultRSABits is the RSA modulus size of generated RS256 keys. 2048 bits is acceptable to NIST through 2030
// and signs several times faster than 4096, which alone would cap a two-core node at a few hundred tokens a
// second (docs/PERFORMANCE.md, "Figures behind the code"). Raise Options.RSABits when policy demands it.
const DefaultRSABits = 2048

// DefaultRefreshEvery is how often Run reloads keys from the store when Options.RefreshEvery is zero.
const DefaultRefreshEvery = 30 * time.Second

// DefaultJWKSMaxAge is how long verifiers may cache the JWKS when Options.JWKSMaxAge is zero.
const DefaultJWKSMaxAge = 5 * time.Minute

// UnknownKIDReloadGap is the least time between two reloads caused by a token naming a kid this node does not
// know, so tokens with made-up kids cannot turn every request into a database query.
const UnknownKIDReloadGap = time.Second

// reloadTimeout bounds one reload, so a stuck database cannot hold the reload lock, or a request waiting on an
// unknown-kid reload, indefinitely.
const reloadTimeout = 5 * time.Second

// ErrSecretMismatch is wrapped by Load and Reload when a stored private key does not decrypt.
var ErrSecretMismatch = errors.New("keys: the system secret (LATCHKEY_SECRET) does not match the one the signing keys were encrypted with, or the stored key was altered")

// Options configures a Manager.
type Options struct {
	Now    func() time.Time // default time.Now
	Logger *slog.Logger     // default slog.Default()
	// RetainFor is how long a retired public key stays in the JWKS after it stops signing: the longest lifetime
	// of anything it signed. Required, > 0.
	RetainFor time.Duration
	// RotateEvery is how long a key signs before Run replaces it; 0 turns automatic rotation off. It must be
	// longer than ActivationDelay.
	RotateEvery time.Duration
	// RefreshEvery is how often Run reloads from the store so every node learns of new keys; default 30s.
	RefreshEvery time.Duration
	// JWKSMaxAge is how long verifiers may cache the JWKS (its Cache-Control max-age); default 5m.
	JWKSMaxAge time.Duration
	// RSABits is the modulus size of new RS256 keys; default DefaultRSABits (2048), minimum 2048.
	RSABits int
	// OnRotation, if set, hears the outcome of every rotation this Manager attempts (Rotate, RotateNow and
	// automatic rotation), once per algorithm: RotationScheduled, RotationImmediate, RotationConflict or
	// RotationFailed. It is called on the rotating goroutine and must not block (metrics count it).
	OnRotation func(alg, outcome string)
}

// Rotation outcomes reported to Options.OnRotation.
const (
	RotationScheduled = "scheduled" // a successor was stored; it signs after ActivationDelay
	RotationImmediate = "immediate" // a successor was stored active at once (RotateNow)
	RotationConflict  = "conflict"  // another node rotated this algorithm first
	RotationFailed    = "failed"    // the successor could not be generated or stored
)

// KeyInfo describes one stored key, without key material; `latchkey keys list --json` prints it.
type KeyInfo struct {
	KID            string     `json:"kid"`
	Alg            string     `json:"alg"`
	State          string     `json:"state"` // StateNext, StateActive or StateRetired
	CreatedAt      time.Time  `json:"created_at"`
	ActivatesAt    time.Time  `json:"activates_at"`
	RetiresAt      *time.Time `json:"retires_at"`      // nil while the key is the newest of its algorithm
	PublishedUntil *time.Time `json:"published_until"` // nil while the key is the newest of its algorithm
}

// Manager holds the signing keys of one node. SigningKey, PublicKey (for a kid it knows) and JWKS read an
// immutable snapshot through an atomic pointer; they never touch the store and never wait on a lock that store
// I/O holds.
//
// A key's life is next -> active -> retired, decided by times stored with it: a rotation stores the new key
// with an ActivatesAt one ActivationDelay ahead, during which every node's JWKS publishes it without signing
// with it; at ActivatesAt every node, reading its own clock, signs with it and stops signing with the old one.
type Manager struct {
	store  Store
	sealer *Sealer
	opts   Options
	now    func() time.Time
	log    *slog.Logger

	snap atomic.Pointer[snapshot]

	// reloading is a one-slot semaphore that serializes reloads and guards cache; unlike a mutex, waiting for
	// it gives up when the context ends. Only the I/O paths take it.
	reloading chan struct{}
	cache     map[string]*parsedKey // by kid

	unknown unknownKIDReloads
}

// unknownKIDReloads bounds the reloads that unknown kids cause: at most one per UnknownKIDReloadGap, and callers
// arriving while one runs wait for it instead of starting their own.
type unknownKIDReloads struct {
	mu      sync.Mutex
	last    time.Time     // start of the last one
	running chan struct{} // closed when the one in flight ends; nil when none runs
	err     error         // how the last one failed (ErrKeysUnavailable), nil if it succeeded
}

// ErrKeysUnavailable is what a lookup of an unknown kid answers when the keys could not be reloaded to look for it:
// the token may well be ours, so it is neither valid nor invalid yet.
var ErrKeysUnavailable = errors.New("signing keys could not be reloaded")

// parsedKey is the decoded material of one key id. A kid is the thumbprint of its public key, and both halves
// are checked against it when parsed, so the cache entry for a kid can never go stale.
type parsedKey struct {
	public  *jose.JSONWebKey
	private *jose.JSONWebKey // decrypted only once the key has been seen able to sign
}

type snapshot struct {
	signers map[string][]signer     // by alg: keys not retired when the snapshot was built, newest activation first
	heads   map[string]head         // by alg: the newest key, which a rotation replaces
	public  map[string]publishedKey // by kid
	jwks    []byte
	etag    string
}

type signer struct {
	kid       string
	activates time.Time
	retires   *time.Time
	private   *jose.JSONWebKey
}

type head struct {
	kid       string
	activates time.Time
}

type publishedKey struct {
	key      *jose.JSONWebKey
	notAfter *time.Time // nil while the newest of its algorithm
}

// NewManager returns a Manager with no keys loaded; call Load before serving.
func NewManager(store Store, secret []byte, opts Options) (*Manager, error) {
	if store == nil {
		return nil, errors.New("keys: new manager: store is nil")
	}
	sealer, err := NewSealer(secret)
	if err != nil {
		return nil, fmt.Errorf("keys: new manager: %w", err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.RefreshEvery == 0 {
		opts.RefreshEvery = DefaultRefreshEvery
	}
	if opts.JWKSMaxAge == 0 {
		opts.JWKSMaxAge = DefaultJWKSMaxAge
	}
	if opts.RSABits == 0 {
		opts.RSABits = DefaultRSABits
	}
	var problems []error
	if opts.RetainFor <= 0 {
		problems = append(problems, fmt.Errorf("RetainFor must be > 0 (the longest lifetime of a signed token), got %v", opts.RetainFor))
	}
	if opts.RefreshEvery < 0 {
		problems = append(problems, fmt.Errorf("RefreshEvery must be >= 0, got %v", opts.RefreshEvery))
	}
	if opts.JWKSMaxAge < 0 {
		problems = append(problems, fmt.Errorf("JWKSMaxAge must be >= 0, got %v", opts.JWKSMaxAge))
	}
	if opts.RotateEvery < 0 {
		problems = append(problems, fmt.Errorf("RotateEvery must be >= 0, got %v", opts.RotateEvery))
	} else if delay := activationDelay(opts); opts.RotateEvery > 0 && opts.RotateEvery <= delay {
		problems = append(problems, fmt.Errorf("RotateEvery must be longer than the activation delay %v, got %v", delay, opts.RotateEvery))
	}
	if opts.RSABits < 2048 {
		problems = append(problems, fmt.Errorf("RSABits must be >= 2048, got %d", opts.RSABits))
	}
	if err := errors.Join(problems...); err != nil {
		return nil, fmt.Errorf("keys: new manager: %w", err)
	}
	m := &Manager{
		store:     store,
		sealer:    sealer,
		opts:      opts,
		now:       opts.Now,
		log:       opts.Logger,
		reloading: make(chan struct{}, 1),
		cache:     map[string]*parsedKey{},
	}
	empty, _, err := m.build(nil, m.now())
	if err != nil {
		return nil, fmt.Errorf("keys: new manager: %w", err)
	}
	m.snap.Store(empty)
	return m, nil
}

// ActivationDelay is how long a scheduled key is published before it signs, for nodes reloading every
// refreshEvery and verifiers caching the JWKS for jwksMaxAge: one reload interval for every node to load it,
// the max-age for every cached copy without it to expire, and one more reload interval of margin for a failed
// reload or clock skew between nodes.
func ActivationDelay(refreshEvery, jwksMaxAge time.Duration) time.Duration {
	return 2*refreshEvery + jwksMaxAge
}

// ActivationDelay is how long a key scheduled by Rotate is published before it signs.
func (m *Manager) ActivationDelay() time.Duration { return activationDelay(m.opts) }

func activationDelay(o Options) time.Duration { return ActivationDelay(o.RefreshEvery, o.JWKSMaxAge) }

// Load reads the keys and, for each algorithm in Algorithms without any key, generates one, active at once (no
// verifier can be relying on an older one), and stores it with ReplaceActiveKey(ctx, "", ...). When another
// node wins that race it reloads and uses the winner's key, so many nodes may call Load at once.
func (m *Manager) Load(ctx context.Context) error {
	if err := m.reload(ctx); err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	missing := m.missing()
	if len(missing) == 0 {
		return nil
	}
	now := m.now()
	for _, alg := range missing {
		rec, err := m.generate(alg, now)
		if err != nil {
			return fmt.Errorf("load signing keys: %w", err)
		}
		rec.ActivatesAt = rec.CreatedAt
		err = m.store.ReplaceActiveKey(ctx, "", rec, now, now)
		switch {
		case errors.Is(err, ErrRotationConflict):
			m.log.InfoContext(ctx, "another node created the signing key first; using it", "alg", alg)
		case err != nil:
			return fmt.Errorf("load signing keys: store new %s key: %w", alg, err)
		default:
			m.log.InfoContext(ctx, "generated signing key", "alg", alg, "kid", rec.KID)
		}
	}
	if err := m.reload(ctx); err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	if missing := m.missing(); len(missing) > 0 {
		return fmt.Errorf("load signing keys: store returned no key for %v after creating one", missing)
	}
	return nil
}

// missing lists the algorithms the current snapshot has no key for.
func (m *Manager) missing() []string {
	snap := m.snap.Load()
	var out []string
	for _, alg := range Algorithms {
		if _, ok := snap.heads[alg]; !ok {
			out = append(out, alg)
		}
	}
	return out
}

// Reload re-reads the store and swaps the in-memory snapshot atomically. It parses and decrypts only keys it has
// not seen before. On error the previous snapshot stays in place.
func (m *Manager) Reload(ctx context.Context) error {
	if err := m.reload(ctx); err != nil {
		return fmt.Errorf("reload signing keys: %w", err)
	}
	return nil
}

func (m *Manager) reload(ctx context.Context) error {
	select {
	case m.reloading <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("wait for the reload in progress: %w", ctx.Err())
	}
	defer func() { <-m.reloading }()
	now := m.now()
	recs, err := m.store.ListSigningKeys(ctx, now)
	if err != nil {
		return fmt.Errorf("list signing keys: %w", err)
	}
	snap, cache, err := m.build(recs, now)
	if err != nil {
		return err
	}
	m.cache = cache
	m.snap.Store(snap)
	return nil
}

// build makes a snapshot from store records, dropping keys past NotAfter. It reads m.cache (the caller holds
// m.reloading) and returns the cache to keep: exactly the keys in the new snapshot.
func (m *Manager) build(recs []Record, now time.Time) (*snapshot, map[string]*parsedKey, error) {
	recs = slices.Clone(recs)
	slices.SortFunc(recs, compareRecords)
	snap := &snapshot{signers: map[string][]signer{}, heads: map[string]head{}, public: map[string]publishedKey{}}
	cache := make(map[string]*parsedKey, len(recs))
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, rec := range recs {
		if !slices.Contains(Algorithms, rec.Alg) {
			m.log.Warn("ignoring signing key with an algorithm this version does not use", "alg", rec.Alg, "kid", rec.KID)
			continue
		}
		if rec.NotAfter != nil && !rec.NotAfter.After(now) {
			continue // past its publication window
		}
		if _, dup := snap.public[rec.KID]; dup {
			return nil, nil, fmt.Errorf("store returned key %s twice", rec.KID)
		}
		pk := m.cache[rec.KID]
		if pk == nil {
			pub, err := parsePublic(rec)
			if err != nil {
				return nil, nil, err
			}
			pk = &parsedKey{public: pub}
		}
		if rec.RetiredAt == nil || now.Before(*rec.RetiredAt) { // next or active: it signs now or will
			if pk.private == nil {
				priv, err := m.openPrivate(rec)
				if err != nil {
					return nil, nil, err
				}
				pk.private = priv
			}
			snap.signers[rec.Alg] = append(snap.signers[rec.Alg], signer{
				kid: rec.KID, activates: rec.activatesAt(), retires: copyTime(rec.RetiredAt), private: pk.private,
			})
		}
		if rec.RetiredAt == nil {
			if cur, ok := snap.heads[rec.Alg]; ok {
				// Records are sorted newest first, so the first one wins.
				m.log.Warn("store has more than one unretired key for an algorithm; rotating from the newest",
					"alg", rec.Alg, "kid", cur.kid, "ignored_kid", rec.KID)
			} else {
				snap.heads[rec.Alg] = head{kid: rec.KID, activates: rec.activatesAt()}
			}
		}
		cache[rec.KID] = pk
		// The snapshot must not share memory with the store's record.
		snap.public[rec.KID] = publishedKey{key: pk.public, notAfter: copyTime(rec.NotAfter)}
		set.Keys = append(set.Keys, *pk.public)
	}
	body, err := json.Marshal(set)
	if err != nil {
		return nil, nil, fmt.Errorf("encode jwks: %w", err)
	}
	sum := sha256.Sum256(body)
	snap.jwks = body
	snap.etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:]) + `"`
	return snap, cache, nil
}

func copyTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := *t
	return &v
}

// compareRecords orders keys as the JWKS lists them: newest activation first, ties in Algorithms order. The
// order depends on stored values only, not on the clock, so every node serves the same bytes and the same ETag
// whatever state the keys are in.
func compareRecords(a, b Record) int {
	if c := b.activatesAt().Compare(a.activatesAt()); c != 0 {
		return c
	}
	if c := cmp.Compare(algIndex(a.Alg), algIndex(b.Alg)); c != 0 {
		return c
	}
	return cmp.Compare(a.KID, b.KID)
}

func algIndex(alg string) int {
	if i := slices.Index(Algorithms, alg); i >= 0 {
		return i
	}
	return len(Algorithms)
}

// openPrivate decrypts and parses the private key of rec, and checks it belongs to rec.KID.
func (m *Manager) openPrivate(rec Record) (*jose.JSONWebKey, error) {
	plain, err := m.sealer.Open(rec.SealedPrivate, []byte(rec.KID))
	if err != nil {
		return nil, fmt.Errorf("decrypt %s key %s: %w", rec.Alg, rec.KID, ErrSecretMismatch)
	}
	defer clear(plain)
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(plain); err != nil {
		return nil, fmt.Errorf("parse private %s key %s: %w", rec.Alg, rec.KID, err)
	}
	if k.IsPublic() {
		return nil, fmt.Errorf("parse private %s key %s: sealed key holds no private part", rec.Alg, rec.KID)
	}
	if err := checkKey(&k, rec); err != nil {
		return nil, fmt.Errorf("private %s key %s: %w", rec.Alg, rec.KID, err)
	}
	return &k, nil
}

// Run reloads every RefreshEvery and, when RotateEvery > 0 and a key is due, schedules its successor. A
// rotation lost to another node is logged at Info. Run returns when ctx is done.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.opts.RefreshEvery)
	defer t.Stop()
	m.rotateDue(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, reloadTimeout)
		err := m.Reload(rctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				m.log.ErrorContext(ctx, "keeping the signing keys already loaded", "err", err)
			}
			continue
		}
		m.rotateDue(ctx)
	}
}

// dueForRotation lists the algorithms whose successor key should be scheduled at now: those whose newest key
// activated at least RotateEvery - ActivationDelay ago, so the successor activates when the key is RotateEvery
// old (and those with no key). A scheduled successor is the newest key and not yet active, so an algorithm
// with one is never due. It is empty when automatic rotation is off.
func (m *Manager) dueForRotation(now time.Time) []string {
	if m.opts.RotateEvery <= 0 {
		return nil
	}
	snap := m.snap.Load()
	var due []string
	for _, alg := range Algorithms {
		h, ok := snap.heads[alg]
		if !ok || !now.Before(h.activates.Add(m.opts.RotateEvery-m.ActivationDelay())) {
			due = append(due, alg)
		}
	}
	return due
}

// rotateDue schedules successors for the keys that are due. The store's compare-and-swap re-checks, inside its
// transaction, that the newest key we saw is still the newest, so when several nodes find the same key due
// only one schedules a successor.
func (m *Manager) rotateDue(ctx context.Context) {
	due := m.dueForRotation(m.now())
	if len(due) == 0 {
		return
	}
	_, errs := m.rotate(ctx, due, false)
	for _, err := range errs {
		switch {
		case errors.Is(err, ErrRotationConflict):
			m.log.InfoContext(ctx, "another node rotated the signing key first", "err", err)
		case ctx.Err() != nil:
		default:
			m.log.ErrorContext(ctx, "automatic key rotation failed", "err", err)
		}
	}
}

// Rotate schedules a new key for every algorithm, active ActivationDelay from now, and reloads; it returns the
// new keys. Until then the new keys are published and the current ones keep signing; from then on the old
// keys stay published, not signing, for RetainFor plus one reload interval. If another node rotated an
// algorithm since this Manager last reloaded, that algorithm is left alone and the error wraps
// ErrRotationConflict.
func (m *Manager) Rotate(ctx context.Context) ([]KeyInfo, error) {
	infos, errs := m.rotate(ctx, Algorithms, false)
	if err := errors.Join(errs...); err != nil {
		return infos, fmt.Errorf("rotate signing keys: %w", err)
	}
	return infos, nil
}

// RotateNow is Rotate with the new keys active at once, for when a key may be compromised. Nodes switch at
// their next reload (or when they meet the new kid), and verifiers holding a cached JWKS reject tokens signed
// with the new keys until their copy expires.
func (m *Manager) RotateNow(ctx context.Context) ([]KeyInfo, error) {
	infos, errs := m.rotate(ctx, Algorithms, true)
	if err := errors.Join(errs...); err != nil {
		return infos, fmt.Errorf("rotate signing keys now: %w", err)
	}
	return infos, nil
}

// rotate stores a successor for the newest key of each alg, comparing against the key in the current snapshot,
// then reloads. It returns the new keys and one error per failure.
func (m *Manager) rotate(ctx context.Context, algs []string, immediately bool) ([]KeyInfo, []error) {
	snap := m.snap.Load()
	now := m.now()
	activates := now
	if !immediately {
		activates = now.Add(m.ActivationDelay())
	}
	// Microseconds: what PostgreSQL keeps, so every node reads back the same moment.
	activates = activates.UTC().Truncate(time.Microsecond)
	// The margin of one reload interval covers a node whose clock runs behind and so stops signing a little late.
	retireUntil := activates.Add(m.opts.RetainFor + m.opts.RefreshEvery)
	var infos []KeyInfo
	var errs []error
	for _, alg := range algs {
		current := snap.heads[alg].kid
		rec, err := m.generate(alg, now)
		if err != nil {
			errs = append(errs, err)
			m.rotated(alg, RotationFailed)
			continue
		}
		rec.ActivatesAt = activates
		if err := m.store.ReplaceActiveKey(ctx, current, rec, now, retireUntil); err != nil {
			errs = append(errs, fmt.Errorf("replace %s key %q: %w", alg, current, err))
			if errors.Is(err, ErrRotationConflict) {
				m.rotated(alg, RotationConflict)
			} else {
				m.rotated(alg, RotationFailed)
			}
			continue
		}
		if immediately {
			m.rotated(alg, RotationImmediate)
			m.log.WarnContext(ctx, "rotated signing key immediately: verifiers holding a cached JWKS reject tokens it signs until their copy expires",
				"alg", alg, "kid", rec.KID, "retired_kid", current, "retired_published_until", retireUntil)
		} else {
			m.rotated(alg, RotationScheduled)
			m.log.InfoContext(ctx, "scheduled signing key", "alg", alg, "kid", rec.KID, "activates_at", activates,
				"retiring_kid", current, "retiring_published_until", retireUntil)
		}
		infos = append(infos, recordInfo(rec, now))
	}
	if err := m.Reload(ctx); err != nil {
		errs = append(errs, err)
	}
	return infos, errs
}

// rotated tells Options.OnRotation, if set, how a rotation of alg ended.
func (m *Manager) rotated(alg, outcome string) {
	if m.opts.OnRotation != nil {
		m.opts.OnRotation(alg, outcome)
	}
}

// SigningKey returns the private key alg signs with at this moment, with KeyID, Algorithm and Use="sig" set:
// the newest key whose ActivatesAt has passed on this node's clock and which has not retired. It reads the
// in-memory snapshot only. The returned struct is a copy; the key it points to is shared and must not be changed.
func (m *Manager) SigningKey(alg string) (*jose.JSONWebKey, error) {
	candidates := m.snap.Load().signers[alg]
	if len(candidates) == 0 {
		return nil, fmt.Errorf("keys: no %q signing key (unsupported algorithm, or keys not loaded)", alg)
	}
	now := m.now()
	var pick *signer
	for i := range candidates {
		c := &candidates[i]
		if now.Before(c.activates) {
			continue
		}
		if c.retires == nil || now.Before(*c.retires) {
			pick = c
			break
		}
		if pick == nil {
			// Retired since the last reload, and this node has not loaded its successor: still better than
			// failing to sign. Its NotAfter leaves a reload interval of margin for exactly this.
			pick = c
		}
	}
	if pick == nil {
		// No key has activated by this node's clock: only the very first key of an algorithm, created by a
		// node whose clock runs ahead of ours. No verifier relies on an older one, so sign with it.
		pick = &candidates[len(candidates)-1]
	}
	k := *pick.private
	return &k, nil
}

// PublicKey returns a published public key (next, active, or retired and before its NotAfter) by kid, so that
// tokens signed before a rotation still verify. It reads the in-memory snapshot. A kid the snapshot does not
// hold may be a key another node created and this one has not loaded yet (an immediate rotation), so it
// reloads from the store before answering "unknown": at most once per UnknownKIDReloadGap however many
// requests ask, so made-up kids cannot hammer the database.
func (m *Manager) PublicKey(kid string) (*jose.JSONWebKey, bool) {
	k, err := m.LookupPublicKey(kid)
	return k, k != nil && err == nil
}

// LookupPublicKey is PublicKey telling "not ours" (nil, nil) from "could not check" (nil, ErrKeysUnavailable
// wrapping the cause): a verifier answers the first as an invalid token and the second as an outage.
func (m *Manager) LookupPublicKey(kid string) (*jose.JSONWebKey, error) {
	k, known := m.publicKey(kid)
	if k != nil || known || kid == "" {
		return k, nil
	}
	if err := m.reloadForUnknownKID(); err != nil {
		return nil, err
	}
	k, _ = m.publicKey(kid)
	return k, nil
}

// publicKey looks kid up in the snapshot; known reports whether the snapshot holds it at all (a key past its
// NotAfter is known but not returned).
func (m *Manager) publicKey(kid string) (key *jose.JSONWebKey, known bool) {
	p, ok := m.snap.Load().public[kid]
	if !ok {
		return nil, false
	}
	if p.notAfter != nil && !p.notAfter.After(m.now()) {
		return nil, true
	}
	k := *p.key
	return &k, true
}

// reloadForUnknownKID reloads because a request met an unknown kid, unless one ran less than
// UnknownKIDReloadGap ago; a caller arriving while one runs waits for it. It reports whether a reload ended
// that the caller should look at.
func (m *Manager) reloadForUnknownKID() error {
	u := &m.unknown
	u.mu.Lock()
	if running := u.running; running != nil {
		u.mu.Unlock()
		t := time.NewTimer(reloadTimeout)
		defer t.Stop()
		select {
		case <-running:
			u.mu.Lock()
			defer u.mu.Unlock()
			return u.err
		case <-t.C:
			return fmt.Errorf("%w: a reload is still running", ErrKeysUnavailable)
		}
	}
	now := m.now()
	if !u.last.IsZero() && now.Sub(u.last) < UnknownKIDReloadGap && now.Sub(u.last) >= 0 {
		// Too soon for another: the last one's outcome stands.
		err := u.err
		u.mu.Unlock()
		return err
	}
	u.last = now
	running := make(chan struct{})
	u.running = running
	u.mu.Unlock()

	// Detached from any one request: waiters share this reload, and one client giving up must not fail it for
	// the others.
	ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
	err := m.reload(ctx)
	cancel()
	if err != nil {
		m.log.Error("reload signing keys for an unknown kid", "err", err)
		err = fmt.Errorf("%w: %w", ErrKeysUnavailable, err)
	}
	u.mu.Lock()
	u.err = err
	u.running = nil
	close(running)
	u.mu.Unlock()
	return err
}

// JWKS returns the pre-encoded JSON Web Key Set (public keys only: next, active, and retired still within
// NotAfter) and its strong ETag, quoted. The body is shared between callers and must not be modified.
func (m *Manager) JWKS() (body []byte, etag string) {
	snap := m.snap.Load()
	return snap.jwks, snap.etag
}

// List returns every key the store returns, with its state at this moment and without key material, for
// `latchkey keys list`.
func (m *Manager) List(ctx context.Context) ([]KeyInfo, error) {
	now := m.now()
	recs, err := m.store.ListSigningKeys(ctx, now)
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	recs = slices.Clone(recs)
	slices.SortFunc(recs, compareRecords)
	infos := make([]KeyInfo, 0, len(recs))
	for _, rec := range recs {
		infos = append(infos, recordInfo(rec, now))
	}
	return infos, nil
}

func recordInfo(rec Record, now time.Time) KeyInfo {
	return KeyInfo{
		KID:            rec.KID,
		Alg:            rec.Alg,
		State:          rec.State(now),
		CreatedAt:      rec.CreatedAt,
		ActivatesAt:    rec.activatesAt(),
		RetiresAt:      copyTime(rec.RetiredAt),
		PublishedUntil: copyTime(rec.NotAfter),
	}
}
