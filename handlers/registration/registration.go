// Package registration serves dynamic client registration (RFC 7591) at provider.PathRegister and the client
// configuration endpoint of RFC 7592 at provider.PathRegister/{client_id}. What a registration may hold is the
// models' rule (models.RegistrationPolicy); this package reads and writes the protocol's JSON and checks tokens.
package registration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/handlers/throttle"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/telemetry"
)

// Modes of LATCHKEY_REGISTRATION.
const (
	ModeOff   = "off"   // no endpoint, nothing in discovery
	ModeToken = "token" // a registration needs an initial access token the operator issued
	ModeOpen  = "open"  // anyone may register, throttled per client address
)

// Modes lists the valid modes.
var Modes = []string{ModeOff, ModeToken, ModeOpen}

// MaxBodyBytes bounds a registration request: metadata with a JWK Set fits in far less.
const MaxBodyBytes = 64 << 10

// DefaultOpenPolicy limits open registrations per client address: 20 at once, then one every 10 minutes, doubling
// up to an hour while they keep coming; a quiet hour starts afresh.
var DefaultOpenPolicy = models.ThrottlePolicy{Free: 20, Base: 10 * time.Minute, Max: time.Hour, Window: time.Hour}

type store interface {
	InitialAccessTokenUsable(ctx context.Context, tokenHash string) (bool, error)
	RegisterDynamicClient(ctx context.Context, c *models.Client, pol models.RegistrationPolicy, registrationTokenHash, initialTokenHash string) error
	ClientByRegistrationToken(ctx context.Context, id, registrationTokenHash string) (*models.Client, error)
	UpdateRegisteredClient(ctx context.Context, c *models.Client, pol models.RegistrationPolicy, oldTokenHash, newTokenHash string) error
	DeleteRegisteredClient(ctx context.Context, id, registrationTokenHash string) error
}

type hasher interface {
	HashSecret(secret string) string
	Compare(ctx context.Context, hashed, data []byte) error
}

// sealer seals a client_secret_jwt client's secret for it (provider.ClientSecretSealer).
type sealer interface {
	Seal(clientID, secret string) (string, error)
}

// API is the registration endpoint family.
type API struct {
	Mode   string // ModeOff, ModeToken or ModeOpen
	Issuer string
	Store  store
	// Secrets hashes client secrets (the provider's hasher); Tokens hashes initial and registration access tokens
	// (provider.NewRegistrationTokenHasher).
	Secrets, Tokens hasher
	// Sealer seals the secret of a client_secret_jwt client, which keeps it sealed as well as hashed.
	Sealer sealer
	Policy models.RegistrationPolicy
	// Throttle limits open registrations per client address (ModeOpen); OpenPolicy zero: DefaultOpenPolicy.
	Throttle   *throttle.Throttle
	OpenPolicy models.ThrottlePolicy
	Now        func() time.Time
}

func (h *API) Mount(r *mux.Router) {
	if h.Mode != ModeToken && h.Mode != ModeOpen {
		return // off: the paths are unknown (404)
	}
	r.HandleFunc(provider.PathRegister, h.handle(h.register)).Methods(http.MethodPost)
	r.HandleFunc(provider.PathRegister+"/{client_id}", h.handle(h.read)).Methods(http.MethodGet)
	r.HandleFunc(provider.PathRegister+"/{client_id}", h.handle(h.replace)).Methods(http.MethodPut)
	r.HandleFunc(provider.PathRegister+"/{client_id}", h.handle(h.delete)).Methods(http.MethodDelete)
}

func (h *API) handle(fn func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			jsonapi.Write(w, r, err)
		}
	}
}

func (h *API) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// response is a registration's answer (RFC 7591 §3.2.1, RFC 7592 §3): the client's identity and credentials,
// then its metadata as stored.
type response struct {
	ClientID              string `json:"client_id"`
	ClientSecret          string `json:"client_secret,omitempty"`
	ClientSecretExpiresAt *int64 `json:"client_secret_expires_at,omitempty"`
	ClientIDIssuedAt      int64  `json:"client_id_issued_at"`
	RegistrationToken     string `json:"registration_access_token"`
	RegistrationURI       string `json:"registration_client_uri"`
	Metadata
}

func (h *API) respond(w http.ResponseWriter, status int, c *models.Client, secret, token string) {
	resp := response{ClientID: c.ID, ClientIDIssuedAt: c.CreatedAt.Unix(), RegistrationToken: token,
		RegistrationURI: h.Issuer + provider.PathRegister + "/" + c.ID, Metadata: metadataOf(c)}
	if secret != "" {
		never := int64(0) // secrets do not expire
		resp.ClientSecret, resp.ClientSecretExpiresAt = secret, &never
	}
	jsonapi.Respond(w, status, resp)
}

// invalidToken is RFC 6750 §3's answer to a missing or wrong bearer token.
func invalidToken(description string) *jsonapi.Error {
	return jsonapi.New(http.StatusUnauthorized, jsonapi.InvalidToken, description).
		WithHeader("WWW-Authenticate", `Bearer realm="latchkey", error="invalid_token"`)
}

// bearer is the Authorization: Bearer token, or "".
func bearer(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// unavailable is the answer to a store that failed: the registration may be retried.
func unavailable(err error) error {
	return jsonapi.New(http.StatusServiceUnavailable, jsonapi.TemporarilyUnavailable, "Client registration is temporarily unavailable; retry shortly.").WithCause(err)
}

// readMetadata checks the content type and reads the body, bounded, into Metadata.
func readMetadata(w http.ResponseWriter, r *http.Request) (Metadata, error) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return Metadata{}, jsonapi.New(http.StatusUnsupportedMediaType, jsonapi.InvalidRequest, "Send the client metadata as JSON with Content-Type: application/json.")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return Metadata{}, jsonapi.New(http.StatusRequestEntityTooLarge, jsonapi.InvalidRequest, "Request body too large.")
		}
		return Metadata{}, jsonapi.BadRequest("The request body could not be read.")
	}
	return ParseMetadata(body)
}

// register is RFC 7591 §3: POST the metadata, with an initial access token unless registration is open.
func (h *API) register(w http.ResponseWriter, r *http.Request) error {
	ctx := context.WithoutCancel(r.Context()) // a token spent is a client stored, whether the caller waits or not
	var initialHash string
	if h.Mode == ModeToken {
		tok := bearer(r)
		if tok == "" {
			return invalidToken("An initial access token is required (Authorization: Bearer).")
		}
		initialHash = h.Tokens.HashSecret(tok)
		ok, err := h.Store.InitialAccessTokenUsable(ctx, initialHash)
		if err != nil {
			return unavailable(err)
		}
		if !ok {
			return invalidToken("The initial access token is unknown, expired or used up.")
		}
	}
	m, err := readMetadata(w, r)
	if err != nil {
		return err
	}
	if h.Mode == ModeOpen {
		p := h.OpenPolicy
		if p == (models.ThrottlePolicy{}) {
			p = DefaultOpenPolicy
		}
		wait, err := h.Throttle.ReservePush(r, telemetry.ThrottleRegistration, p)
		if err != nil {
			return unavailable(err)
		}
		if wait > 0 {
			return jsonapi.New(http.StatusTooManyRequests, jsonapi.TooManyRequests, "Too many registrations from this address. Try again in "+throttle.Seconds(wait)+" seconds.").
				WithHeader("Retry-After", throttle.Seconds(wait))
		}
	}
	c, err := m.client(uuid.NewString(), h.Policy)
	if err != nil {
		return err
	}
	var secret string
	if !c.Public && c.TokenEndpointAuthMethod != models.AuthMethodPrivateKeyJWT { // a key client has no use for one
		if secret, err = h.newSecret(c); err != nil {
			return err
		}
	}
	token := provider.GenerateClientSecret()
	err = h.Store.RegisterDynamicClient(ctx, c, h.Policy, h.Tokens.HashSecret(token), initialHash)
	if e := h.storeError(err); e != nil {
		return e
	}
	request.Logger(ctx).Info("client registered", "client_id", c.ID, "open", h.Mode == ModeOpen)
	h.respond(w, http.StatusCreated, c, secret, token)
	return nil
}

// storeError answers a registration or update the store refused: the rules' problems by their RFC 7591 codes, a
// spent initial access token as invalid_token, anything else as a fault (503).
func (h *API) storeError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, models.ErrInitialTokenRefused):
		return invalidToken("The initial access token is unknown, expired or used up.")
	case errors.Is(err, models.ErrNotFound):
		return invalidToken("The registration access token is not valid for this client.")
	}
	if e := validationError(err); e != nil {
		return e
	}
	if errors.Is(err, models.ErrInvalid) { // the pool is gone: the operator's configuration, not the client's
		return jsonapi.New(http.StatusBadRequest, jsonapi.InvalidClientMetadata, "The client cannot be registered here.").WithCause(err)
	}
	return unavailable(err)
}

// authorized is the client at the configuration endpoint whose registration access token the request carries.
func (h *API) authorized(r *http.Request) (*models.Client, string, error) {
	tok := bearer(r)
	if tok == "" {
		return nil, "", invalidToken("A registration access token is required (Authorization: Bearer).")
	}
	hash := h.Tokens.HashSecret(tok)
	c, err := h.Store.ClientByRegistrationToken(r.Context(), mux.Vars(r)["client_id"], hash)
	switch {
	case errors.Is(err, models.ErrNotFound):
		// The same answer for no such client, another client's token and an operator's client (RFC 7592 §3).
		return nil, "", invalidToken("The registration access token is not valid for this client.")
	case err != nil:
		return nil, "", unavailable(err)
	}
	return c, tok, nil
}

// read is RFC 7592 §2.1: the client's current metadata. The secret is not in it: only its hash is kept. The token
// presented is answered back as the registration access token, since it stays valid.
func (h *API) read(w http.ResponseWriter, r *http.Request) error {
	c, tok, err := h.authorized(r)
	if err != nil {
		return err
	}
	h.respond(w, http.StatusOK, c, "", tok)
	return nil
}

// replace is RFC 7592 §2.2: the metadata sent replace the client's wholly (omitted fields take their defaults),
// validated as a registration, and the registration access token is replaced by a new one. The secret stays; a
// client_secret sent must be the current one. A client that becomes confidential is given a secret, one that
// becomes public loses its own.
func (h *API) replace(w http.ResponseWriter, r *http.Request) error {
	old, _, err := h.authorized(r)
	if err != nil {
		return err
	}
	m, err := readMetadata(w, r)
	if err != nil {
		return err
	}
	if m.ClientID != old.ID {
		return metadataError("client_id: must be the client's own client_id")
	}
	if m.ClientSecret != "" && (old.SecretHash == "" || h.Secrets.Compare(r.Context(), []byte(old.SecretHash), []byte(m.ClientSecret)) != nil) {
		return metadataError("client_secret: is not the client's secret (a client cannot choose its secret)")
	}
	c, err := m.client(old.ID, h.Policy)
	if err != nil {
		return err
	}
	var secret string
	secretJWT := c.TokenEndpointAuthMethod == models.AuthMethodClientSecretJWT
	switch {
	case c.Public, c.TokenEndpointAuthMethod == models.AuthMethodPrivateKeyJWT:
		// No secret, and none kept: a secret left behind would work again if the client switched back.
		c.SecretHash, c.SealedSecret = "", ""
	case old.SecretHash == "", secretJWT && old.SealedSecret == "":
		// Newly confidential, or newly client_secret_jwt: the secret it had was kept only hashed.
		if secret, err = h.newSecret(c); err != nil {
			return err
		}
	case secretJWT:
		c.SecretHash, c.SealedSecret = old.SecretHash, old.SealedSecret
	default:
		c.SecretHash, c.SealedSecret = old.SecretHash, ""
	}
	token := provider.GenerateClientSecret()
	ctx := context.WithoutCancel(r.Context())
	err = h.Store.UpdateRegisteredClient(ctx, c, h.Policy, h.Tokens.HashSecret(bearer(r)), h.Tokens.HashSecret(token))
	if e := h.storeError(err); e != nil {
		return e
	}
	c.CreatedAt = old.CreatedAt
	request.Logger(ctx).Info("registered client updated", "client_id", c.ID)
	h.respond(w, http.StatusOK, c, secret, token)
	return nil
}

// delete is RFC 7592 §2.3: the client goes, with every token, code and consent issued to it.
func (h *API) delete(w http.ResponseWriter, r *http.Request) error {
	tok := bearer(r)
	if tok == "" {
		return invalidToken("A registration access token is required (Authorization: Bearer).")
	}
	ctx := context.WithoutCancel(r.Context())
	id := mux.Vars(r)["client_id"]
	err := h.Store.DeleteRegisteredClient(ctx, id, h.Tokens.HashSecret(tok))
	if errors.Is(err, models.ErrNotFound) {
		return invalidToken("The registration access token is not valid for this client.")
	} else if err != nil {
		return unavailable(err)
	}
	request.Logger(ctx).Info("registered client deleted", "client_id", id)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// newSecret gives confidential client c a new secret and returns it: hashed, and for client_secret_jwt also sealed
// (a longer secret, to key every HS alg).
func (h *API) newSecret(c *models.Client) (string, error) {
	if c.TokenEndpointAuthMethod != models.AuthMethodClientSecretJWT {
		secret := provider.GenerateClientSecret()
		c.SecretHash, c.SealedSecret = h.Secrets.HashSecret(secret), ""
		return secret, nil
	}
	secret := provider.GenerateClientSecretJWT()
	sealed, err := h.Sealer.Seal(c.ID, secret)
	if err != nil {
		return "", fmt.Errorf("seal the client's secret: %w", err)
	}
	c.SecretHash, c.SealedSecret = h.Secrets.HashSecret(secret), sealed
	return secret, nil
}
