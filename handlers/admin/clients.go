package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/latchkey/latchkey/handlers/grant"
	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/handlers/request"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/provider"
)

// Clients: list, create, get, update, delete, rotate the secret. The client's rules are models.Client's (the
// CLI's too): ApplyDefaults, SetAdmin, SetAuthMethod, and Validate run by the store. A pool-limited admin client
// sees and manages only the clients of its pools that are not admin clients (another admin client's secret
// would be a way out of its pools), and cannot make one.

// secrets stores a client secret as the token endpoint checks it (a hash; sealed too for client_secret_jwt).
type secrets interface {
	StoredSecret(clientID, secret string, sealed bool) (hash, sealedSecret string, err error)
}

// clientFields are a client's settings as the admin API reads and writes them: RFC 7591 names where they exist.
// A PATCH body is decoded over the current ones, so a field left out is kept.
type clientFields struct {
	Name                        string          `json:"client_name"`
	RedirectURIs                []string        `json:"redirect_uris"`
	GrantTypes                  []string        `json:"grant_types"`
	ResponseTypes               []string        `json:"response_types"`
	Scope                       string          `json:"scope"`
	Audience                    []string        `json:"audience"`
	Public                      bool            `json:"public"`
	TokenEndpointAuthMethod     string          `json:"token_endpoint_auth_method"`
	TokenEndpointAuthSigningAlg string          `json:"token_endpoint_auth_signing_alg"`
	JWKS                        json.RawMessage `json:"jwks"`
	JWKSURI                     string          `json:"jwks_uri"`
	AccessTokenFormat           string          `json:"access_token_format"`
	FirstParty                  bool            `json:"first_party"`
	PostLogoutRedirectURIs      []string        `json:"post_logout_redirect_uris"`
	AllowedOrigins              []string        `json:"allowed_origins"`
	Pool                        string          `json:"pool"`
	AllowSignup                 bool            `json:"allow_signup"`
	Admin                       bool            `json:"admin"`
	AdminPools                  []string        `json:"admin_pools"`
	RefreshTokenRotation        string          `json:"refresh_token_rotation"`
	RefreshTokenReuseIntervalMS int64           `json:"refresh_token_reuse_interval_ms"`
	EncryptionJWK               json.RawMessage `json:"encryption_jwk"`
	IDTokenEncryptedAlg         string          `json:"id_token_encrypted_response_alg"`
	IDTokenEncryptedEnc         string          `json:"id_token_encrypted_response_enc"`
	UserinfoEncryptedAlg        string          `json:"userinfo_encrypted_response_alg"`
	UserinfoEncryptedEnc        string          `json:"userinfo_encrypted_response_enc"`
	AccessTokenEncryptionJWK    json.RawMessage `json:"access_token_encryption_jwk"`
	AccessTokenEncryptionAlg    string          `json:"access_token_encryption_alg"`
	AccessTokenEncryptionEnc    string          `json:"access_token_encryption_enc"`
	RequireSignedRequestObject  bool            `json:"require_signed_request_object"`
	RequestObjectSigningAlg     string          `json:"request_object_signing_alg"`
	DPoPBoundAccessTokens       bool            `json:"dpop_bound_access_tokens"`
	TokenExchangeAudiences      []string        `json:"token_exchange_audiences"`
	TokenExchangeDelegationOnly bool            `json:"token_exchange_delegation_only"`
	BackchannelLogoutURI        string          `json:"backchannel_logout_uri"`
	BackchannelLogoutSession    bool            `json:"backchannel_logout_session_required"`
	FrontchannelLogoutURI       string          `json:"frontchannel_logout_uri"`
	FrontchannelLogoutSession   bool            `json:"frontchannel_logout_session_required"`
	MagicLinkURL                string          `json:"magic_link_url"`
}

// clientView is a client as GET shows it: never its secret, which only create and rotate answer, once.
type clientView struct {
	ClientID string `json:"client_id"`
	clientFields
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// clientField names a models.Client field (its JSON name) as the admin API does.
func clientField(f string) string {
	switch f {
	case "id":
		return "client_id"
	case "name":
		return "client_name"
	case "scopes":
		return "scope"
	case "refresh_token_reuse_interval":
		return "refresh_token_reuse_interval_ms"
	}
	return f
}

func list(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// rawJSON is stored JSON text as a JSON value; nil for none.
func rawJSON(s string) json.RawMessage {
	if s == "" || !json.Valid([]byte(s)) {
		return nil
	}
	return json.RawMessage(s)
}

// jsonText is a JSON value as stored text; null or absent is "".
func jsonText(raw json.RawMessage) string {
	if s := strings.TrimSpace(string(raw)); s != "null" {
		return s
	}
	return ""
}

func viewOf(c *models.Client) clientView {
	return clientView{ClientID: c.ID, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, clientFields: clientFields{
		Name: c.Name, RedirectURIs: list(c.RedirectURIs), GrantTypes: list(c.GrantTypes), ResponseTypes: list(c.ResponseTypes),
		Scope: strings.Join(c.Scopes, " "), Audience: list(c.Audience), Public: c.Public,
		TokenEndpointAuthMethod: c.GetTokenEndpointAuthMethod(), TokenEndpointAuthSigningAlg: c.TokenEndpointAuthSigningAlg,
		JWKS: rawJSON(c.JWKS), JWKSURI: c.JWKSURI, AccessTokenFormat: c.AccessTokenFormat, FirstParty: c.FirstParty,
		PostLogoutRedirectURIs: list(c.PostLogoutRedirectURIs), AllowedOrigins: list(c.AllowedOrigins), Pool: c.Pool,
		AllowSignup: c.AllowSignup, Admin: c.Admin, AdminPools: list(c.AdminPools),
		RefreshTokenRotation: c.RefreshTokenRotation, RefreshTokenReuseIntervalMS: c.RefreshTokenReuseInterval.Milliseconds(),
		EncryptionJWK: rawJSON(c.EncryptionJWK), IDTokenEncryptedAlg: c.IDTokenEncryptedResponseAlg, IDTokenEncryptedEnc: c.IDTokenEncryptedResponseEnc,
		UserinfoEncryptedAlg: c.UserinfoEncryptedResponseAlg, UserinfoEncryptedEnc: c.UserinfoEncryptedResponseEnc,
		AccessTokenEncryptionJWK: rawJSON(c.AccessTokenEncryptionJWK), AccessTokenEncryptionAlg: c.AccessTokenEncryptionAlg, AccessTokenEncryptionEnc: c.AccessTokenEncryptionEnc,
		RequireSignedRequestObject: c.RequireSignedRequestObject, RequestObjectSigningAlg: c.RequestObjectSigningAlg,
		DPoPBoundAccessTokens: c.DPoPBoundAccessTokens, TokenExchangeAudiences: list(c.TokenExchangeAudiences),
		TokenExchangeDelegationOnly: c.TokenExchangeDelegationOnly,
		BackchannelLogoutURI:        c.BackchannelLogoutURI, BackchannelLogoutSession: c.BackchannelLogoutSessionRequired,
		FrontchannelLogoutURI: c.FrontchannelLogoutURI, FrontchannelLogoutSession: c.FrontchannelLogoutSessionRequired,
		MagicLinkURL: c.MagicLinkURL,
	}}
}

// apply copies the settings onto c.
func (f *clientFields) apply(c *models.Client) {
	c.Name, c.RedirectURIs, c.GrantTypes, c.ResponseTypes = f.Name, f.RedirectURIs, f.GrantTypes, f.ResponseTypes
	c.Scopes, c.Audience, c.Public = strings.Fields(f.Scope), f.Audience, f.Public
	c.TokenEndpointAuthMethod, c.TokenEndpointAuthSigningAlg = f.TokenEndpointAuthMethod, f.TokenEndpointAuthSigningAlg
	c.JWKS, c.JWKSURI, c.AccessTokenFormat, c.FirstParty = jsonText(f.JWKS), f.JWKSURI, f.AccessTokenFormat, f.FirstParty
	c.PostLogoutRedirectURIs, c.AllowedOrigins, c.Pool, c.AllowSignup = f.PostLogoutRedirectURIs, f.AllowedOrigins, f.Pool, f.AllowSignup
	c.Admin, c.AdminPools = f.Admin, f.AdminPools
	c.RefreshTokenRotation, c.RefreshTokenReuseInterval = f.RefreshTokenRotation, time.Duration(f.RefreshTokenReuseIntervalMS)*time.Millisecond
	c.EncryptionJWK, c.IDTokenEncryptedResponseAlg, c.IDTokenEncryptedResponseEnc = jsonText(f.EncryptionJWK), f.IDTokenEncryptedAlg, f.IDTokenEncryptedEnc
	c.UserinfoEncryptedResponseAlg, c.UserinfoEncryptedResponseEnc = f.UserinfoEncryptedAlg, f.UserinfoEncryptedEnc
	c.AccessTokenEncryptionJWK, c.AccessTokenEncryptionAlg, c.AccessTokenEncryptionEnc = jsonText(f.AccessTokenEncryptionJWK), f.AccessTokenEncryptionAlg, f.AccessTokenEncryptionEnc
	c.RequireSignedRequestObject, c.RequestObjectSigningAlg = f.RequireSignedRequestObject, f.RequestObjectSigningAlg
	c.DPoPBoundAccessTokens, c.TokenExchangeAudiences, c.TokenExchangeDelegationOnly = f.DPoPBoundAccessTokens, f.TokenExchangeAudiences, f.TokenExchangeDelegationOnly
	c.BackchannelLogoutURI, c.BackchannelLogoutSessionRequired = f.BackchannelLogoutURI, f.BackchannelLogoutSession
	c.FrontchannelLogoutURI, c.FrontchannelLogoutSessionRequired = f.FrontchannelLogoutURI, f.FrontchannelLogoutSession
	c.MagicLinkURL = f.MagicLinkURL
}

// limited says whether the admin client is bound to some pools.
func limited(admin *models.Client) bool { return len(admin.AdminPools) > 0 }

// manages says whether the admin client may see and manage cl.
func manages(admin, cl *models.Client) bool {
	return !limited(admin) || (!cl.Admin && admin.AdministersPool(cl.Pool))
}

// boundByRead says whether a write of the admin client to a client it read must be conditional on that read
// (the row's updated_at): for a pool-limited one always, since what made the client its to manage (not an admin
// client, in its pools) may change between the read and the write, and a secret rotated, a setting reverted or a
// client deleted after that would reach a client it may not touch.
func boundByRead(admin *models.Client, ifMatch bool) bool { return ifMatch || limited(admin) }

// mayHold refuses, for a pool-limited admin client, a client it could not manage afterwards.
func mayHold(admin, cl *models.Client) error {
	switch {
	case !limited(admin):
		return nil
	case cl.Admin || len(cl.AdminPools) > 0:
		return grant.InsufficientScope(Scope, "A pool-limited admin client cannot make admin clients.")
	case !admin.AdministersPool(cl.Pool):
		return notYourPool(cl.Pool)
	}
	return nil
}

func (h *API) listClients(w http.ResponseWriter, r *http.Request) error {
	admin, err := h.authorize(r)
	if err != nil {
		return err
	}
	pg, err := jsonapi.ReadPage(r)
	if err != nil {
		return err
	}
	isAdmin, err := jsonapi.BoolParam(r, "admin")
	if err != nil {
		return err
	}
	q := models.ClientQuery{Admin: isAdmin, After: pg.After, Limit: pg.Limit + 1}
	if pool := r.URL.Query().Get("pool"); pool != "" {
		if !admin.AdministersPool(pool) {
			return notYourPool(pool)
		}
		q.Pools = []string{pool}
	} else if limited(admin) {
		q.Pools = admin.AdminPools
	}
	if limited(admin) {
		no := false
		q.Admin = &no // other admin clients are not there for it
	}
	rows, err := h.Store.ListClientsPage(r.Context(), q)
	if err != nil {
		return fmt.Errorf("admin api: list clients: %w", err)
	}
	if pool := r.URL.Query().Get("pool"); len(rows) == 0 && pool != "" {
		if err := h.poolExists(r, pool); err != nil {
			return err
		}
	}
	rows, cursor := jsonapi.NextPage(rows, pg.Limit, func(c *models.Client) (time.Time, string) { return c.CreatedAt, c.ID })
	out := make([]clientView, 0, len(rows))
	for i := range rows {
		out = append(out, viewOf(&rows[i]))
	}
	jsonapi.Respond(w, http.StatusOK, map[string]any{"clients": out, "next_cursor": cursor})
	return nil
}

// client loads the client a request names; one the admin client may not manage is not found.
func (h *API) client(ctx context.Context, admin *models.Client, id string) (*models.Client, error) {
	cl, err := h.Store.ClientByID(ctx, id)
	if err == nil && !manages(admin, cl) {
		err = models.ErrNotFound
	}
	if err != nil {
		return nil, writeError("admin api: load client", err, "No such client.")
	}
	return cl, nil
}

// withSecret is a client as create and rotate answer it: with its secret, shown this once.
type withSecret struct {
	clientView
	ClientSecret string `json:"client_secret,omitempty"`
}

// newSecret gives cl a new generated secret (longer for client_secret_jwt) and returns it.
func (h *API) newSecret(cl *models.Client) (string, error) {
	sealed := cl.TokenEndpointAuthMethod == models.AuthMethodClientSecretJWT
	plain := provider.GenerateClientSecret()
	if sealed {
		plain = provider.GenerateClientSecretJWT()
	}
	var err error
	if cl.SecretHash, cl.SealedSecret, err = h.Secrets.StoredSecret(cl.ID, plain, sealed); err != nil {
		return "", fmt.Errorf("admin api: store client secret: %w", err)
	}
	return plain, nil
}

func (h *API) createClient(w http.ResponseWriter, r *http.Request) error {
	admin, err := h.authorize(r)
	if err != nil {
		return err
	}
	var body struct {
		ClientID    string `json:"client_id"`
		AllowSignup *bool  `json:"allow_signup"` // shadows clientFields': not said is not false
		clientFields
	}
	if err := jsonapi.Decode(r, &body); err != nil {
		return err
	}
	body.clientFields.AllowSignup = models.SignupAllowed(body.FirstParty, body.AllowSignup)
	cl := &models.Client{ID: body.ClientID}
	body.apply(cl)
	cl.ApplyDefaults()
	if err := mayHold(admin, cl); err != nil {
		return err
	}
	plain := ""
	if !cl.Public && cl.TokenEndpointAuthMethod != models.AuthMethodPrivateKeyJWT {
		if plain, err = h.newSecret(cl); err != nil {
			return err
		}
	}
	if err := h.Store.RegisterClient(r.Context(), cl); err != nil {
		return writeError("admin api: create client", err, "No such client.")
	}
	request.Logger(r.Context()).Info("admin created client", "client_id", cl.ID, "client", admin.ID)
	w.Header().Set("Location", Prefix+"/clients/"+cl.ID)
	w.Header().Set("ETag", jsonapi.ETag(viewOf(cl)))
	jsonapi.Respond(w, http.StatusCreated, withSecret{clientView: viewOf(cl), ClientSecret: plain})
	return nil
}

func (h *API) getClient(w http.ResponseWriter, r *http.Request) error {
	admin, err := h.authorize(r)
	if err != nil {
		return err
	}
	cl, err := h.client(r.Context(), admin, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	jsonapi.RespondTagged(w, http.StatusOK, viewOf(cl))
	return nil
}

// patchClient merges the body over the client's settings. A client that becomes client_secret_jwt gets a new
// secret (its old one is kept only as a hash), answered this once.
func (h *API) patchClient(w http.ResponseWriter, r *http.Request) error {
	admin, err := h.authorize(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	cur, err := h.client(ctx, admin, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	view := viewOf(cur)
	conditional, err := jsonapi.IfMatch(r, jsonapi.ETag(view))
	if err != nil {
		return err
	}
	f := view.clientFields
	if err := jsonapi.Decode(r, &f); err != nil {
		return err
	}
	next := *cur
	f.apply(&next)
	if next.Admin != cur.Admin {
		next.SetAdmin(next.Admin)
	}
	if m := next.TokenEndpointAuthMethod; m != view.TokenEndpointAuthMethod && next.TokenEndpointAuthSigningAlg == cur.TokenEndpointAuthSigningAlg {
		next.TokenEndpointAuthMethod = cur.TokenEndpointAuthMethod
		next.SetAuthMethod(m)
	}
	if err := mayHold(admin, &next); err != nil {
		return err
	}
	plain := ""
	newSecret := next.NeedsNewSecret(cur)
	if newSecret {
		if plain, err = h.newSecret(&next); err != nil {
			return err
		}
	}
	switch {
	case boundByRead(admin, conditional):
		err = h.Store.UpdateClientIf(ctx, &next, cur.UpdatedAt, newSecret)
	case newSecret:
		err = h.Store.UpdateClientAndSecret(ctx, &next)
	default:
		err = h.Store.UpdateClient(ctx, &next)
	}
	if err != nil {
		return writeError("admin api: update client", err, "No such client.")
	}
	request.Logger(ctx).Info("admin updated client", "client_id", next.ID, "client", admin.ID)
	w.Header().Set("ETag", jsonapi.ETag(viewOf(&next)))
	jsonapi.Respond(w, http.StatusOK, withSecret{clientView: viewOf(&next), ClientSecret: plain})
	return nil
}

func (h *API) deleteClient(w http.ResponseWriter, r *http.Request) error {
	admin, err := h.authorize(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	cl, err := h.client(ctx, admin, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	conditional, err := jsonapi.IfMatch(r, jsonapi.ETag(viewOf(cl)))
	if err != nil {
		return err
	}
	if boundByRead(admin, conditional) {
		err = h.Store.DeleteClientIf(ctx, cl.ID, cl.UpdatedAt)
	} else {
		err = h.Store.DeleteClient(ctx, cl.ID)
	}
	if err != nil {
		return writeError("admin api: delete client", err, "No such client.")
	}
	request.Logger(ctx).Info("admin deleted client", "client_id", cl.ID, "client", admin.ID)
	jsonapi.NoContent(w)
	return nil
}

// rotateSecret answers POST /clients/{id}/secret: a new generated secret, shown once; the old one stops working.
func (h *API) rotateSecret(w http.ResponseWriter, r *http.Request) error {
	admin, err := h.authorize(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	cl, err := h.client(ctx, admin, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	if cl.Public || cl.TokenEndpointAuthMethod == models.AuthMethodPrivateKeyJWT {
		return jsonapi.Invalid("token_endpoint_auth_method", "This client authenticates without a secret.")
	}
	plain, err := h.newSecret(cl)
	if err != nil {
		return err
	}
	var unmodified *time.Time
	if boundByRead(admin, false) {
		unmodified = &cl.UpdatedAt
	}
	if err := h.Store.UpdateClientSecretIf(ctx, cl.ID, cl.SecretHash, cl.SealedSecret, unmodified); err != nil {
		return writeError("admin api: rotate client secret", err, "No such client.")
	}
	request.Logger(ctx).Info("admin rotated a client secret", "client_id", cl.ID, "client", admin.ID)
	jsonapi.Respond(w, http.StatusOK, map[string]string{"client_id": cl.ID, "client_secret": plain})
	return nil
}
