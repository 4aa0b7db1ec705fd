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
