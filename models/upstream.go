package models

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
)

// Sign in with another provider: a pool's upstream OpenID Connect or GitHub providers, the links between an
// upstream account and one of our users, and the sign-ins under way. The rules for a provider live here, once
// (Validate); the CLI and any other entry point call them. The protocol itself is package upstream's.

// Kinds of upstream provider.
const (
	UpstreamKindOIDC   = "oidc"
	UpstreamKindGitHub = "github"
)

// UpstreamProvider is another provider a pool's users may sign in with.
type UpstreamProvider struct {
	ID          string `json:"id"`   // ^[a-z0-9][a-z0-9_-]{0,63}$: it appears in /login/upstream/{id}
	Pool        string `json:"pool"` // "" = DefaultPool
	Kind        string `json:"kind"` // UpstreamKindOIDC or UpstreamKindGitHub
	DisplayName string `json:"display_name"`
	Issuer      string `json:"issuer,omitempty"` // OIDC: discovery at Issuer + /.well-known/openid-configuration
	ClientID    string `json:"client_id"`
	// SealedSecret is the client secret sealed (upstream.SecretSealer, bound to ID); never shown.
	SealedSecret string   `json:"-"`
	Scopes       []string `json:"scopes"`
	// Claims of the upstream ID token (OIDC) mapped to the user's email, name and roles ("" = not mapped).
	ClaimEmail string `json:"claim_email,omitempty"`
	ClaimName  string `json:"claim_name,omitempty"`
	ClaimRoles string `json:"claim_roles,omitempty"`
	// GitHub's endpoints, overridable (GitHub Enterprise, tests); "" = github.com's.
	AuthURL   string    `json:"github_auth_url,omitempty"`
	TokenURL  string    `json:"github_token_url,omitempty"`
	APIURL    string    `json:"github_api_url,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

var upstreamIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// Validate checks everything about a provider that needs no database.
func (p *UpstreamProvider) Validate() error {
	var pr problems
	if !upstreamIDPattern.MatchString(p.ID) {
		pr.add("id", "must be 1 to 64 of a-z, 0-9, _ and -, starting with a letter or digit")
	}
	if p.Pool != "" && validatePoolName(p.Pool) != nil {
		pr.add("pool", "%q is not a pool name", p.Pool)
	}
	if n := utf8.RuneCountInString(p.DisplayName); !storableText(p.DisplayName) || n == 0 || n > 64 || strings.ContainsAny(p.DisplayName, "\r\n\t") {
		pr.add("display_name", "must be 1 to 64 characters of one line")
	}
	if p.ClientID == "" || len(p.ClientID) > 255 || !storableText(p.ClientID) {
		pr.add("client_id", "must be 1 to 255 bytes")
	}
	if p.SealedSecret == "" {
		pr.add("client_secret", "is required")
	}
	for _, s := range p.Scopes {
		if s == "" || len(s) > 128 || strings.ContainsAny(s, " \"\\") || !storableText(s) {
			pr.add("scopes", "%q is not a scope token", s)
		}
	}
	for field, c := range map[string]string{"claim_email": p.ClaimEmail, "claim_name": p.ClaimName, "claim_roles": p.ClaimRoles} {
		if len(c) > 128 || !storableText(c) {
			pr.add(field, "must be a claim name of at most 128 bytes")
		}
	}
	switch p.Kind {
	case UpstreamKindOIDC:
		if msg := upstreamURLProblem(p.Issuer); msg != "" {
			pr.add("issuer_url", "%s", msg)
		}
		if !slices.Contains(p.Scopes, "openid") {
			pr.add("scopes", "must include openid")
		}
		if p.ClaimEmail == "" {
			pr.add("claim_email", "is required: users are found and created by email")
		}
		if p.AuthURL != "" || p.TokenURL != "" || p.APIURL != "" {
			pr.add("github_auth_url", "GitHub endpoints are for a github provider; an OIDC provider's come from its discovery")
		}
	case UpstreamKindGitHub:
		if p.Issuer != "" {
			pr.add("issuer_url", "is for an oidc provider")
		}
		for field, u := range map[string]string{"github_auth_url": p.AuthURL, "github_token_url": p.TokenURL, "github_api_url": p.APIURL} {
			if u == "" {
				continue
			}
			if msg := upstreamURLProblem(u); msg != "" {
				pr.add(field, "%s", msg)
			}
		}
	default:
		pr.add("kind", "must be %s or %s", UpstreamKindOIDC, UpstreamKindGitHub)
	}
	slices.SortStableFunc(pr, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
	return pr.err()
}

// upstreamURLProblem says what is wrong with an upstream endpoint: it must be https, or http to a loopback
// host (a provider on the same machine, tests); no fragment, no credentials.
func upstreamURLProblem(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case raw == "" || err != nil || u.Host == "":
		return "must be an absolute URL"
	case u.Fragment != "" || u.User != nil:
		return "must have no fragment and no credentials"
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http":
		if ip := net.ParseIP(u.Hostname()); u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback()) {
			return ""
		}
	}
	return "must be https (http only to a loopback host)"
}

type upstreamProviderRow struct {
	ID           string    `gorm:"column:id;primaryKey"`
	Pool         string    `gorm:"column:pool"`
	Kind         string    `gorm:"column:kind"`
	DisplayName  string    `gorm:"column:display_name"`
	Issuer       string    `gorm:"column:issuer"`
	ClientID     string    `gorm:"column:client_id"`
	SealedSecret string    `gorm:"column:client_secret_sealed"`
	Scopes       string    `gorm:"column:scopes"`
	ClaimEmail   string    `gorm:"column:claim_email"`
	ClaimName    string    `gorm:"column:claim_name"`
	ClaimRoles   string    `gorm:"column:claim_roles"`
	AuthURL      string    `gorm:"column:auth_url"`
	TokenURL     string    `gorm:"column:token_url"`
	APIURL       string    `gorm:"column:api_url"`
	CreatedAt    time.Time `gorm:"column:created_at"`
	UpdatedAt    time.Time `gorm:"column:updated_at"`
}

func (upstreamProviderRow) TableName() string { return "upstream_providers" }

func (r *upstreamProviderRow) provider() (*UpstreamProvider, error) {
	scopes, err := decodeList(r.Scopes)
	if err != nil {
		return nil, fmt.Errorf("upstream provider %q: %w", r.ID, err)
	}
	return &UpstreamProvider{
		ID: r.ID, Pool: r.Pool, Kind: r.Kind, DisplayName: r.DisplayName, Issuer: r.Issuer, ClientID: r.ClientID,
		SealedSecret: r.SealedSecret, Scopes: scopes, ClaimEmail: r.ClaimEmail, ClaimName: r.ClaimName,
		ClaimRoles: r.ClaimRoles, AuthURL: r.AuthURL, TokenURL: r.TokenURL, APIURL: r.APIURL,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}, nil
}

func upstreamRowOf(p *UpstreamProvider) upstreamProviderRow {
	return upstreamProviderRow{
		ID: p.ID, Pool: poolOrDefault(p.Pool), Kind: p.Kind, DisplayName: p.DisplayName, Issuer: p.Issuer,
		ClientID: p.ClientID, SealedSecret: p.SealedSecret, Scopes: encodeList(p.Scopes), ClaimEmail: p.ClaimEmail,
		ClaimName: p.ClaimName, ClaimRoles: p.ClaimRoles, AuthURL: p.AuthURL, TokenURL: p.TokenURL, APIURL: p.APIURL,
	}
}

// CreateUpstreamProvider validates and stores p; ErrConflict if its id is taken, ErrInvalid (a ValidationError,
// or an unknown pool) for bad input.
func (s *Store) CreateUpstreamProvider(ctx context.Context, p *UpstreamProvider) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("create upstream provider: %w", err)
	}
	row := upstreamRowOf(p)
	row.CreatedAt = dbTime(s.now())
	row.UpdatedAt = row.CreatedAt
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		if err := requirePool(tx, row.Pool); err != nil {
			return err
		}
		if err := tx.Create(&row).Error; errors.Is(err, gorm.ErrDuplicatedKey) {
			return fmt.Errorf("upstream provider %q: %w", p.ID, ErrConflict)
		} else if err != nil {
			return mapErr(err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create upstream provider: %w", err)
	}
	return nil
}

// UpdateUpstreamProvider replaces everything of provider p.ID but its pool and creation time; ErrNotFound if
// there is none.
func (s *Store) UpdateUpstreamProvider(ctx context.Context, p *UpstreamProvider) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("update upstream provider: %w", err)
	}
	row := upstreamRowOf(p)
	res := s.conn(ctx).Model(&upstreamProviderRow{}).Where("id = ?", p.ID).Select(
		"kind", "display_name", "issuer", "client_id", "client_secret_sealed", "scopes", "claim_email", "claim_name",
		"claim_roles", "auth_url", "token_url", "api_url", "updated_at",
	).Updates(map[string]any{
		"kind": row.Kind, "display_name": row.DisplayName, "issuer": row.Issuer, "client_id": row.ClientID,
		"client_secret_sealed": row.SealedSecret, "scopes": row.Scopes, "claim_email": row.ClaimEmail,
		"claim_name": row.ClaimName, "claim_roles": row.ClaimRoles, "auth_url": row.AuthURL,
		"token_url": row.TokenURL, "api_url": row.APIURL, "updated_at": dbTime(s.now()),
	})
	if res.Error != nil {
		return fmt.Errorf("update upstream provider: %w", mapErr(res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("update upstream provider %q: %w", p.ID, ErrNotFound)
	}
	return nil
}

// UpstreamProviderByID returns a provider; ErrNotFound if there is none.
func (s *Store) UpstreamProviderByID(ctx context.Context, id string) (*UpstreamProvider, error) {
	var row upstreamProviderRow
	if err := s.conn(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return nil, fmt.Errorf("get upstream provider: %w", mapErr(err))
	}
	return row.provider()
}

// ListUpstreamProviders returns the providers of pool, or of every pool if pool is "", by id.
func (s *Store) ListUpstreamProviders(ctx context.Context, pool string) ([]UpstreamProvider, error) {
	var rows []upstreamProviderRow
	q := s.conn(ctx).Order("id")
	if pool != "" {
		q = q.Where("pool = ?", pool)
	}
	if err := q.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list upstream providers: %w", mapErr(err))
	}
	out := make([]UpstreamProvider, 0, len(rows))
	for i := range rows {
		p, err := rows[i].provider()
		if err != nil {
			return nil, err
		}
		out = append(out, *p)
	}
	return out, nil
}

// DeleteUpstreamProvider deletes a provider with its identity links and sign-ins under way; ErrNotFound if
// there is none. Users it created stay (with no way to sign in but a password reset).
func (s *Store) DeleteUpstreamProvider(ctx context.Context, id string) error {
	err := s.inTx(ctx, func(tx *gorm.DB) error { // its links and sign-ins go by ON DELETE CASCADE
		res := tx.Where("id = ?", id).Delete(&upstreamProviderRow{})
		if res.Error != nil {
			return mapErr(res.Error)
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete upstream provider %q: %w", id, err)
	}
	return nil
}

// newUnusablePasswordHash is the password hash of a user created through another provider: of 256 random bits
// nobody knows, so the account has no password until one is set.
func newUnusablePasswordHash() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return HashPassword(base64.RawURLEncoding.EncodeToString(b[:]))
}
