package models

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Dynamic client registration (RFC 7591) and its management (RFC 7592). What a stranger may register is stricter
// than what the operator may: RegistrationPolicy.Validate is Client.ValidateRegistration plus the rules below, and
// the store's registration methods run it, so the endpoint cannot store a client that breaks them.
//
// Two kinds of token are involved, both random 256-bit values of which only a keyed hash (the caller's) is stored:
// an initial access token, which the operator issues and which allows a number of registrations until it expires,
// and a client's registration access token, which allows reading, replacing and deleting that client only and is
// replaced on every update. A client the operator created has no registration access token, so it can never be
// managed that way.

// ErrInitialTokenRefused is returned by RegisterDynamicClient when the initial access token is unknown, expired or
// spent. Nothing was written.
var ErrInitialTokenRefused = errors.New("initial access token unknown, expired or spent")

// MaxInitialTokenUses bounds how many registrations one initial access token may make.
const MaxInitialTokenUses = 10000

// RegistrationPolicy is what a dynamically registered client may hold beyond the rules of every client.
type RegistrationPolicy struct {
	// Pool is the one user pool dynamically registered clients sign users in from ("" → DefaultPool).
	Pool string
	// Scopes are the only scopes such a client may register.
	Scopes []string
}

// Validate checks c as a dynamic registration: ValidateRegistration, and it is not an admin or first-party client;
// it signs in users of the policy's pool alone; it registers none but the policy's scopes, none of the password
// grant, allowed origins, audience or refresh settings (which an operator sets); its redirect and post-logout
// redirect URIs are https, http on a loopback host (RFC 8252 §7.3) or a private-use scheme of reverse-domain form
// (RFC 8252 §7.1). Every problem is reported, each naming its field, as a ValidationError.
func (pol RegistrationPolicy) Validate(c *Client) error {
	var p problems
	if err := c.ValidateRegistration(); err != nil {
		var v ValidationError
		if !errors.As(err, &v) {
			return err
		}
		p = problems(v)
	}
	if c == nil {
		return p.err()
	}
	if c.Admin || len(c.AdminPools) > 0 {
		p.add("admin", "a registered client cannot be an admin client")
	}
	if c.FirstParty {
		p.add("first_party", "a registered client cannot be a first-party app")
	}
	for _, g := range []string{"password", GrantTypeTokenExchange} {
		if slices.Contains(c.GrantTypes, g) {
			p.add("grant_types", "grant type %q cannot be registered", g)
		}
	}
	if poolOrDefault(c.Pool) != poolOrDefault(pol.Pool) {
		p.add("pool", "a registered client signs in users of pool %q only", poolOrDefault(pol.Pool))
	}
	for _, s := range c.Scopes {
		if !slices.Contains(pol.Scopes, s) {
			p.add("scopes", "%q cannot be registered (allowed: %s)", s, strings.Join(pol.Scopes, " "))
		}
	}
	if len(c.AllowedOrigins) > 0 || len(c.Audience) > 0 || c.AllowSignup || c.AccessTokenFormat != "" ||
		c.RefreshTokenRotation == RefreshTokenRotationOff || c.RefreshTokenReuseInterval != 0 ||
		c.AccessTokenEncryptionJWK != "" || c.AccessTokenEncryptionAlg != "" ||
		len(c.TokenExchangeAudiences) > 0 || c.TokenExchangeDelegationOnly {
		p.add("id", "holds settings only an operator may choose")
	}
	for _, f := range []struct {
		field string
		uris  []string
	}{{"redirect_uris", c.RedirectURIs}, {"post_logout_redirect_uris", c.PostLogoutRedirectURIs}} {
		for _, u := range f.uris {
			if !registrableRedirect(u) {
				p.add(f.field, "%q must be https, http on localhost, 127.0.0.1 or [::1], or a private-use scheme such as com.example.app:/", u)
			}
		}
	}
	return p.err()
}

// registrableRedirect: https; http on a loopback host; or a private-use scheme in reverse-domain form (it has a
// dot), which also keeps out javascript:, data: and file:.
func registrableRedirect(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || !absoluteURIWithoutFragment(raw) || u.User != nil {
		return false // reported by Validate, or credentials in a redirect URI
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		h := u.Hostname()
		return h == "localhost" || h == "127.0.0.1" || h == "::1"
	}
	return strings.Contains(u.Scheme, ".")
}

// initialTokenRow is the registration_initial_tokens table.
type initialTokenRow struct {
	TokenHash string    `gorm:"column:token_hash;primaryKey"`
	UsesLeft  int       `gorm:"column:uses_left"`
	ExpiresAt time.Time `gorm:"column:expires_at"`
	CreatedAt time.Time `gorm:"column:created_at"`
}

func (initialTokenRow) TableName() string { return "registration_initial_tokens" }

// CreateInitialAccessToken stores an initial access token by its hash, good for uses registrations until
// expiresAt.
func (s *Store) CreateInitialAccessToken(ctx context.Context, tokenHash string, uses int, expiresAt time.Time) error {
	if tokenHash == "" || uses < 1 || uses > MaxInitialTokenUses || !expiresAt.After(s.now()) {
		return fmt.Errorf("create initial access token: %w: needs a hash, 1 to %d uses and a future expiry", ErrInvalid, MaxInitialTokenUses)
	}
	row := initialTokenRow{TokenHash: tokenHash, UsesLeft: uses, ExpiresAt: dbTime(expiresAt), CreatedAt: dbTime(s.now())}
	if err := s.conn(ctx).Create(&row).Error; err != nil {
		return fmt.Errorf("create initial access token: %w", mapErr(err))
	}
	return nil
}

// InitialAccessTokenUsable reports whether the token with this hash exists, has not expired and has a use left. It
// decides nothing: RegisterDynamicClient spends the use, atomically. The endpoint asks first so that a bad token
// is told apart from bad metadata.
func (s *Store) InitialAccessTokenUsable(ctx context.Context, tokenHash string) (bool, error) {
	var n int64
	err := s.conn(ctx).Model(&initialTokenRow{}).
		Where("token_hash = ? AND uses_left > 0 AND expires_at > ?", tokenHash, dbTime(s.now())).Count(&n).Error
	if err != nil {
		return false, fmt.Errorf("check initial access token: %w", mapErr(err))
	}
	return n > 0, nil
}

// spendInitialToken takes one use of the token in tx: a conditional decrement, so of any number of concurrent
// registrations with a token of n uses exactly n get a row (PostgreSQL re-checks the condition on the row it
// waited for; SQLite has one writer). ErrInitialTokenRefused when none was left.
func (s *Store) spendInitialToken(tx *gorm.DB, tokenHash string) error {
	res := tx.Exec("UPDATE registration_initial_tokens SET uses_left = uses_left - 1 WHERE token_hash = ? AND uses_left > 0 AND expires_at > ?",
		tokenHash, dbTime(s.now()))
	if res.Error != nil {
		return mapErr(res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrInitialTokenRefused
	}
	return nil
}

// RegisterDynamicClient stores a dynamically registered client: pol.Validate, then, in one transaction, one use of
// the initial access token spent (initialTokenHash ""; none is needed, open registration) and the client stored as
// CreateClient stores it, with the hash of its registration access token. If anything fails the use is not spent.
// ErrInitialTokenRefused, ErrInvalid (a ValidationError) or ErrConflict as CreateClient.
func (s *Store) RegisterDynamicClient(ctx context.Context, c *Client, pol RegistrationPolicy, registrationTokenHash, initialTokenHash string) error {
	if err := pol.Validate(c); err != nil {
		return fmt.Errorf("register client: %w", err)
	}
	if registrationTokenHash == "" {
		return fmt.Errorf("register client: %w: no registration access token", ErrInvalid)
	}
	var spend func(tx *gorm.DB) error
	if initialTokenHash != "" {
		spend = func(tx *gorm.DB) error { return s.spendInitialToken(tx, initialTokenHash) }
	}
	return s.createClient(ctx, c, map[string]any{"registration_token_hash": registrationTokenHash}, spend)
}

// ClientByRegistrationToken returns the client id if registrationTokenHash is its current registration access
// token's; ErrNotFound otherwise, whether there is no such client, it has another token, or it was created by the
// operator and has none.
func (s *Store) ClientByRegistrationToken(ctx context.Context, id, registrationTokenHash string) (*Client, error) {
	if registrationTokenHash == "" {
		return nil, fmt.Errorf("get registered client: %w", ErrNotFound)
	}
	var row clientRow
	err := s.conn(ctx).Where("id = ? AND registration_token_hash = ?", id, registrationTokenHash).Take(&row).Error
	if err != nil {
		return nil, fmt.Errorf("get registered client: %w", mapErr(err))
	}
	return row.client()
}

// UpdateRegisteredClient replaces the registered client c.ID as UpdateClient does, and its secret (c.SecretHash and
// c.SealedSecret: a client that became confidential gets one, one that became public loses it) and its registration access token hash,
// only while its registration access token is still the one hashed to oldTokenHash: of two updates with the same
// token, one wins and the other is ErrNotFound. pol.Validate runs first.
func (s *Store) UpdateRegisteredClient(ctx context.Context, c *Client, pol RegistrationPolicy, oldTokenHash, newTokenHash string) error {
	if err := pol.Validate(c); err != nil {
		return fmt.Errorf("update registered client: %w", err)
	}
	if oldTokenHash == "" || newTokenHash == "" {
		return fmt.Errorf("update registered client: %w", ErrNotFound)
	}
	return s.updateClientRow(ctx, c, true,
		map[string]any{"registration_token_hash": newTokenHash},
		map[string]any{"registration_token_hash": oldTokenHash})
}

// DeleteRegisteredClient deletes the registered client id as DeleteClient does (its tokens, codes, consents and
// origins with it), only if registrationTokenHash is its current registration access token's; ErrNotFound
// otherwise.
func (s *Store) DeleteRegisteredClient(ctx context.Context, id, registrationTokenHash string) error {
	if registrationTokenHash == "" {
		return fmt.Errorf("delete registered client: %w", ErrNotFound)
	}
	return s.deleteClient(ctx, id, map[string]any{"registration_token_hash": registrationTokenHash})
}
