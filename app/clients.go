package app

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latchkey/latchkey/jwe"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/provider"
)

func runClients(ctx context.Context, c *cli, args []string) error {
	return dispatch(ctx, c, "clients", args, map[string]func(context.Context, *cli, []string) error{
		"create":        clientsCreate,
		"update":        clientsUpdate,
		"list":          clientsList,
		"get":           clientsGet,
		"delete":        clientsDelete,
		"rotate-secret": clientsRotateSecret,
		// An initial access token for dynamic client registration (LATCHKEY_REGISTRATION=token).
		"registration-token": clientsRegistrationToken,
	})
}

// dispatch runs the named subcommand of group.
func dispatch(ctx context.Context, c *cli, group string, args []string, subs map[string]func(context.Context, *cli, []string) error) error {
	names := make([]string, 0, len(subs))
	for n := range subs {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(args) == 0 || subs[args[0]] == nil {
		if len(args) > 0 && args[0] != "-h" && args[0] != "--help" {
			fmt.Fprintf(c.stderr, "latchkey %s: unknown subcommand %q\n", group, args[0])
		}
		fmt.Fprintf(c.stderr, "usage: latchkey %s {%s} [flags]\n", group, strings.Join(names, "|"))
		return errUsage
	}
	return subs[args[0]](ctx, c, args[1:])
}

// splitList accepts space- or comma-separated values.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

// clientJSON is how the CLI shows a client: RFC 7591 field names where they exist.
type clientJSON struct {
	ClientID                string    `json:"client_id"`
	ClientSecret            string    `json:"client_secret,omitempty"`
	ClientName              string    `json:"client_name"`
	GrantTypes              []string  `json:"grant_types"`
	ResponseTypes           []string  `json:"response_types"`
	RedirectURIs            []string  `json:"redirect_uris"`
	Scope                   string    `json:"scope"`
	Audience                []string  `json:"audience"`
	Public                  bool      `json:"public"`
	TokenEndpointAuthMethod string    `json:"token_endpoint_auth_method"`
	AccessTokenFormat       string    `json:"access_token_format,omitempty"`
	FirstParty              bool      `json:"first_party"`
	Pool                    string    `json:"pool"`
	AllowSignup             bool      `json:"allow_signup"`
	Admin                   bool      `json:"admin"`
	AdminPools              []string  `json:"admin_pools"` // empty: every pool
	RefreshTokenRotation    string    `json:"refresh_token_rotation"`
	RefreshTokenReuse       string    `json:"refresh_token_reuse_interval"` // a Go duration
	IDTokenEncryptedAlg     string    `json:"id_token_encrypted_response_alg,omitempty"`
	IDTokenEncryptedEnc     string    `json:"id_token_encrypted_response_enc,omitempty"`
	UserinfoEncryptedAlg    string    `json:"userinfo_encrypted_response_alg,omitempty"`
	UserinfoEncryptedEnc    string    `json:"userinfo_encrypted_response_enc,omitempty"`
	AccessTokenEncryptedAlg string    `json:"access_token_encryption_alg,omitempty"`
	AccessTokenEncryptedEnc string    `json:"access_token_encryption_enc,omitempty"`
	PostLogoutRedirectURIs  []string  `json:"post_logout_redirect_uris"`
	AllowedOrigins          []string  `json:"allowed_origins"`
	CreatedAt               time.Time `json:"created_at"`

	// JWKS is the client's public JWK Set (private_key_jwt), as registered.
	JWKS                        json.RawMessage `json:"jwks,omitempty"`
	TokenEndpointAuthSigningAlg string          `json:"token_endpoint_auth_signing_alg,omitempty"`

	// Signed request objects (RFC 9101).
	RequireSignedRequestObject bool   `json:"require_signed_request_object"`
	RequestObjectSigningAlg    string `json:"request_object_signing_alg,omitempty"`
	// JWKSURI is where the client publishes its public JWK Set, instead of JWKS.
	JWKSURI string `json:"jwks_uri,omitempty"`
	// Token exchange (RFC 8693): the audiences it may ask for; none: it may not exchange.
	TokenExchangeAudiences      []string `json:"token_exchange_audiences"`
	TokenExchangeDelegationOnly bool     `json:"token_exchange_delegation_only"`
	// DPoPBoundAccessTokens: every token request must carry a DPoP proof (RFC 9449 §5.2).
	DPoPBoundAccessTokens bool `json:"dpop_bound_access_tokens"`

	// Logout (OpenID Connect Back-Channel and Front-Channel Logout 1.0).
	BackchannelLogoutURI              string `json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired  bool   `json:"backchannel_logout_session_required"`
	FrontchannelLogoutURI             string `json:"frontchannel_logout_uri,omitempty"`
	FrontchannelLogoutSessionRequired bool   `json:"frontchannel_logout_session_required"`
	// MagicLinkURL is the app's page a passwordless sign-in mail links to.
	MagicLinkURL string `json:"magic_link_url,omitempty"`
}

func toClientJSON(cl *models.Client, secret string) clientJSON {
	nonNil := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	return clientJSON{
		ClientID: cl.ID, ClientSecret: secret, ClientName: cl.Name,
		GrantTypes: nonNil(cl.GrantTypes), ResponseTypes: nonNil(cl.ResponseTypes), RedirectURIs: nonNil(cl.RedirectURIs),
		Scope: strings.Join(cl.Scopes, " "), Audience: nonNil(cl.Audience), Public: cl.Public,
		TokenEndpointAuthMethod: cl.GetTokenEndpointAuthMethod(), AccessTokenFormat: cl.AccessTokenFormat,
		FirstParty: cl.FirstParty, Pool: cl.Pool, AllowSignup: cl.AllowSignup,
		Admin: cl.Admin, AdminPools: nonNil(cl.AdminPools),
		RefreshTokenRotation: cl.RefreshTokenRotation, RefreshTokenReuse: cl.RefreshTokenReuseInterval.String(),
		IDTokenEncryptedAlg: cl.IDTokenEncryptedResponseAlg, IDTokenEncryptedEnc: cl.IDTokenEncryptedResponseEnc,
		UserinfoEncryptedAlg: cl.UserinfoEncryptedResponseAlg, UserinfoEncryptedEnc: cl.UserinfoEncryptedResponseEnc,
		AccessTokenEncryptedAlg: cl.AccessTokenEncryptionAlg, AccessTokenEncryptedEnc: cl.AccessTokenEncryptionEnc,
		PostLogoutRedirectURIs: nonNil(cl.PostLogoutRedirectURIs),
		AllowedOrigins:         nonNil(cl.AllowedOrigins), CreatedAt: cl.CreatedAt,
		JWKS: jwksJSON(cl.JWKS), TokenEndpointAuthSigningAlg: cl.TokenEndpointAuthSigningAlg,

		RequireSignedRequestObject: cl.RequireSignedRequestObject, RequestObjectSigningAlg: cl.RequestObjectSigningAlg,
		JWKSURI:                cl.JWKSURI,
		TokenExchangeAudiences: nonNil(cl.TokenExchangeAudiences), TokenExchangeDelegationOnly: cl.TokenExchangeDelegationOnly, DPoPBoundAccessTokens: cl.DPoPBoundAccessTokens,

		BackchannelLogoutURI: cl.BackchannelLogoutURI, BackchannelLogoutSessionRequired: cl.BackchannelLogoutSessionRequired,
		FrontchannelLogoutURI: cl.FrontchannelLogoutURI, FrontchannelLogoutSessionRequired: cl.FrontchannelLogoutSessionRequired,
		MagicLinkURL: cl.MagicLinkURL,
	}
}

// jwksJSON is a stored JWK Set as JSON to print; nil for none (or for text that is not JSON, which Validate
// never lets in).
func jwksJSON(src string) json.RawMessage {
	if src == "" || !json.Valid([]byte(src)) {
		return nil
	}
	return json.RawMessage(src)
}

// clientFlags are the flags of clients create.
type clientFlags struct {
	id, name, grants, responses, redirects, scopes, audience, authMethod, format string
	postLogout, origins, pool, adminPools                                        string
	public, firstParty, allowSignup, admin                                       bool
	enc                                                                          encryptionFlags
	policy                                                                       clientPolicyFlags
}

// clientPolicyFlags are the flag groups clients create and clients update share, defined once so the two
// commands cannot drift apart. A flag not given leaves the setting alone: the registration's default on create,
// the client's current value on update. Whether the result is usable is the client's rule (models.Client.Validate).
type clientPolicyFlags struct {
	refresh        refreshPolicyFlags
	keys           keyAuthFlags
	requestObjects requestObjectFlags
	exchange       tokenExchangeFlags
	dpopBound      optionalBool
	logout         logoutFlags
	magicLink      magicLinkFlag
}

// register adds the groups to fs; create words the help for a new client, otherwise for a change ("-": remove).
func (p *clientPolicyFlags) register(fs *flag.FlagSet, create bool) {
	p.refresh.register(fs, create)
	p.keys.register(fs, create)
	p.requestObjects.register(fs, create)
	p.exchange.register(fs)
	fs.Var(&p.dpopBound, "dpop-bound-access-tokens", "every token request of the client must carry a DPoP proof (RFC 9449), so all its access tokens are bound to its key")
	p.logout.register(fs, create)
	p.magicLink.register(fs)
}

// apply copies the given settings onto the client; it returns the files it could not read and the values that
// do not parse, each named as its flag.
func (p clientPolicyFlags) apply(cl *models.Client) []string {
	problems := append(p.refresh.apply(cl), p.keys.apply(cl)...)
	p.requestObjects.apply(cl)
	p.exchange.apply(cl)
	if p.dpopBound.set {
		cl.DPoPBoundAccessTokens = p.dpopBound.value
	}
	p.logout.apply(cl)
	p.magicLink.apply(cl)
	return problems
}

// encryptionFlags are a client's OpenID Connect §10.2 encryption settings, JWKs given as JSON or @file.
type encryptionFlags struct {
	jwk, idAlg, idEnc, uiAlg, uiEnc, atJWK, atAlg, atEnc string
}

func (e *encryptionFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&e.jwk, "encryption-jwk", "", "the client's public JWK (JSON or @file) for ID token and userinfo encryption")
	fs.StringVar(&e.idAlg, "id-token-encrypted-response-alg", "", "encrypt ID tokens: RSA-OAEP-256 or ECDH-ES")
	fs.StringVar(&e.idEnc, "id-token-encrypted-response-enc", "", "content encryption for ID tokens (default "+jwe.DefaultEnc+")")
	fs.StringVar(&e.uiAlg, "userinfo-encrypted-response-alg", "", "encrypt userinfo responses: RSA-OAEP-256 or ECDH-ES")
	fs.StringVar(&e.uiEnc, "userinfo-encrypted-response-enc", "", "content encryption for userinfo (default "+jwe.DefaultEnc+")")
	fs.StringVar(&e.atJWK, "access-token-encryption-jwk", "", "resource server's public JWK (JSON or @file): JWT access tokens are nested in a JWE to it")
	fs.StringVar(&e.atAlg, "access-token-encryption-alg", "", "RSA-OAEP-256 or ECDH-ES")
	fs.StringVar(&e.atEnc, "access-token-encryption-enc", "", "content encryption (default "+jwe.DefaultEnc+")")
}

// readJWKArg accepts inline JSON or @path.
func readJWKArg(v string) (string, error) {
	if path, ok := strings.CutPrefix(v, "@"); ok {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	}
	return v, nil
}

// apply reads the JWKs (inline or @file) and copies the settings onto the client, an alg without an enc getting
// the default enc written out; it returns the files it could not read. Whether the settings are usable is the
// client's rule (models.Client.Validate).
func (e encryptionFlags) apply(cl *models.Client) []string {
	var p []string
	load := func(flagName, v string) string {
		raw, err := readJWKArg(v)
		if err != nil {
			p = append(p, fmt.Sprintf("%s: %v", flagName, err))
		}
		return raw
	}
	withDefault := func(alg, enc string) string {
		if alg != "" && enc == "" {
			return jwe.DefaultEnc
		}
		return enc
	}
	cl.EncryptionJWK = load("--encryption-jwk", e.jwk)
	cl.AccessTokenEncryptionJWK = load("--access-token-encryption-jwk", e.atJWK)
	cl.IDTokenEncryptedResponseAlg, cl.IDTokenEncryptedResponseEnc = e.idAlg, withDefault(e.idAlg, e.idEnc)
	cl.UserinfoEncryptedResponseAlg, cl.UserinfoEncryptedResponseEnc = e.uiAlg, withDefault(e.uiAlg, e.uiEnc)
	cl.AccessTokenEncryptionAlg, cl.AccessTokenEncryptionEnc = e.atAlg, withDefault(e.atAlg, e.atEnc)
	return p
}

// keyAuthFlags are a client's keys for private_key_jwt: --jwks (a public JWK Set, JSON or @file) and
// --token-endpoint-auth-signing-alg. Empty means not given; on update, --jwks - removes the set. Whether they are
// usable is the client's rule (models.Client.Validate).
type keyAuthFlags struct {
	jwks, alg string
	jwksURI   optionalString // --jwks-uri: the set by URL; on update, "" (or "-") removes it
}

func (k *keyAuthFlags) register(fs *flag.FlagSet, create bool) {
	jwksHelp := "the client's public JWK Set (JSON or @file) for private_key_jwt client authentication"
	uriHelp := "instead of --jwks: the https URL where the client publishes its public JWK Set (fetched and cached by the server)"
	if !create {
		jwksHelp += " (\"-\": remove it)"
		uriHelp += " (\"\": remove it)"
	}
	fs.StringVar(&k.jwks, "jwks", "", jwksHelp)
	fs.Var(&k.jwksURI, "jwks-uri", uriHelp)
	fs.StringVar(&k.alg, "token-endpoint-auth-signing-alg", "", "the one algorithm its client assertions are signed with (private_key_jwt default: what its first key implies: its alg, RS256 for RSA, ES256 for P-256; client_secret_jwt: HS256 (default), HS384 or HS512)")
}

// apply reads the JWK Set (inline or @file) and copies the given settings onto the client; it returns the files
// it could not read.
func (k keyAuthFlags) apply(cl *models.Client) []string {
	switch k.jwks {
	case "":
	case "-":
		cl.JWKS = ""
	default:
		raw, err := readJWKArg(k.jwks)
		if err != nil {
			return []string{fmt.Sprintf("--jwks: %v", err)}
		}
		cl.JWKS = raw
	}
	if k.jwksURI.set {
		cl.JWKSURI = strings.TrimSpace(k.jwksURI.value)
		if cl.JWKSURI == "-" {
			cl.JWKSURI = ""
		}
	}
	if k.alg != "" {
		cl.TokenEndpointAuthSigningAlg = k.alg
	}
	return nil
}

// optionalString is a string flag that remembers whether it was given, so that an empty value can mean "remove".
type optionalString struct {
	set   bool
	value string
}

func (s *optionalString) String() string { return s.value }
func (s *optionalString) Set(v string) error {
	s.set, s.value = true, v
	return nil
}

// refreshPolicyFlags are a client's refresh policy: --refresh-token-rotation and --refresh-token-reuse-interval.
// Empty means not given. Which values are allowed is the client's rule (models.Client.Validate).
type refreshPolicyFlags struct{ rotation, reuse string }

func (r *refreshPolicyFlags) register(fs *flag.FlagSet, create bool) {
	rotationHelp, reuseHelp := "on or off: whether each refresh spends the refresh token and answers a new one", "with rotation on: how long a just-rotated refresh token may be presented again (two tabs) without revoking its grant, a Go duration up to "+models.MaxRefreshTokenReuseInterval.String()
	if create {
		rotationHelp += " (default on)"
		reuseHelp += " (default 0: never)"
	}
	fs.StringVar(&r.rotation, "refresh-token-rotation", "", rotationHelp)
	fs.StringVar(&r.reuse, "refresh-token-reuse-interval", "", reuseHelp)
}

// apply copies the given settings onto the client; it returns the problems with a value that is not a duration.
func (r refreshPolicyFlags) apply(cl *models.Client) []string {
	if r.rotation != "" {
		cl.RefreshTokenRotation = r.rotation
	}
	if r.reuse == "" {
		return nil
	}
	d, err := time.ParseDuration(r.reuse)
	if err != nil {
		return []string{fmt.Sprintf("--refresh-token-reuse-interval: %q is not a duration (say 0, 500ms or 30s)", r.reuse)}
	}
	cl.RefreshTokenReuseInterval = d
	return nil
}

// tokenExchangeFlags are a client's token exchange policy (RFC 8693): --token-exchange, the audiences it may ask
// for, which also registers (or, with "-", removes) the grant; --token-exchange-delegation-only. Whether the
// policy is allowed is the client's rule (models.Client.Validate).
type tokenExchangeFlags struct {
	audiences      optionalString
	delegationOnly optionalBool
}

func (x *tokenExchangeFlags) register(fs *flag.FlagSet) {
	fs.Var(&x.audiences, "token-exchange", "audiences (or RFC 8707 resources) the client may ask for by token exchange (RFC 8693), comma separated; registers the grant (\"-\": removes both)")
	fs.Var(&x.delegationOnly, "token-exchange-delegation-only", "token exchange only with an actor token (delegation): never impersonation")
}

func (x tokenExchangeFlags) apply(cl *models.Client) {
	if x.delegationOnly.set {
		cl.TokenExchangeDelegationOnly = x.delegationOnly.value
	}
	if !x.audiences.set {
		return
	}
	cl.GrantTypes = slices.DeleteFunc(cl.GrantTypes, func(g string) bool { return g == models.GrantTypeTokenExchange })
	cl.TokenExchangeAudiences = nil
	if v := strings.TrimSpace(x.audiences.value); v != "-" && v != "" {
		cl.TokenExchangeAudiences = splitList(v)
		cl.GrantTypes = append(cl.GrantTypes, models.GrantTypeTokenExchange)
	} else if !x.delegationOnly.set {
		cl.TokenExchangeDelegationOnly = false
	}
}

// clientFromFlags builds a client registration from the flags, filling in the defaults, and checks it by the
// client's own rules (models.Client.ValidateRegistration, which the store runs again), reporting every problem
// at once, each named as its flag.
func clientFromFlags(f clientFlags) (*models.Client, error) {
	cl := &models.Client{
		ID: f.id, Name: f.name, Public: f.public, FirstParty: f.firstParty,
		GrantTypes: splitList(f.grants), ResponseTypes: splitList(f.responses), RedirectURIs: splitList(f.redirects),
		Scopes: splitList(f.scopes), Audience: splitList(f.audience),
		TokenEndpointAuthMethod: f.authMethod, AccessTokenFormat: f.format,
		PostLogoutRedirectURIs: splitList(f.postLogout), AllowedOrigins: splitList(f.origins),
		Pool: f.pool, AllowSignup: f.allowSignup,
		Admin: f.admin, AdminPools: splitList(f.adminPools),
	}
	cl.ApplyDefaults()
	p := append(f.enc.apply(cl), f.policy.apply(cl)...)
	var ve models.ValidationError
	if err := cl.ValidateRegistration(); errors.As(err, &ve) {
		p = append(p, flagProblems(ve)...)
	} else if err != nil {
		p = append(p, err.Error())
	}
	if len(p) > 0 {
		return nil, errors.New(strings.Join(p, "; "))
	}
	return cl, nil
}

// flagProblems names each field at fault as its flag: redirect_uris is --redirect-uris.
func flagProblems(ve models.ValidationError) []string {
	out := make([]string, len(ve))
	for i, f := range ve {
		out[i] = "--" + strings.ReplaceAll(f.Field, "_", "-") + ": " + f.Problem
	}
	return out
}

// validationError shows a models.ValidationError with its fields named as flags, and any other models.ErrInvalid
// error as the reason alone.
func validationError(err error) error {
	var ve models.ValidationError
	if errors.As(err, &ve) {
		return errors.New(strings.Join(flagProblems(ve), "; "))
	}
	if _, reason, ok := strings.Cut(err.Error(), models.ErrInvalid.Error()+": "); ok {
		return errors.New(reason)
	}
	return err
}

func clientsCreate(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("clients create")
	id := fs.String("id", "", "client id (default: a random UUID)")
	secret := fs.String("secret", "", "client secret (default: generated, 256 bits; 512 for client_secret_jwt); at least 32 characters (64 for client_secret_jwt)")
	name := fs.String("name", "", "human-readable name, shown on the consent page (default: the --id)")
	grants := fs.String("grant-types", "", "grant types, comma or space separated (default: client_credentials; with --public: authorization_code,refresh_token)")
	responses := fs.String("response-types", "", "response types (default: code when authorization_code is allowed)")
	redirects := fs.String("redirect-uris", "", "allowed redirect URIs, matched exactly")
	scopes := fs.String("scopes", "", "scopes the client may request")
	audience := fs.String("audience", "", "audiences (RFC 8707 resources) the client may request")
	public := fs.Bool("public", false, "public client (SPA, mobile): no secret, PKCE required")
	authMethod := fs.String("token-endpoint-auth-method", "", "client_secret_basic (default), client_secret_post, client_secret_jwt (assertions MACed with the secret), private_key_jwt (with --jwks or --jwks-uri; no secret), or none (public)")
	format := fs.String("access-token-format", "", "opaque or jwt (default: the server's LATCHKEY_DEFAULT_ACCESS_TOKEN_FORMAT)")
	firstParty := fs.Bool("first-party", false, "first-party app: users are not asked for consent")
	postLogout := fs.String("post-logout-redirect-uris", "", "where logout may send the browser back to, matched exactly")
	origins := fs.String("allowed-origins", "", "extra web origins allowed to call the token, userinfo, revocation and token API endpoints (CORS)")
	pool := fs.String("pool", "", "the user pool this client signs users in from (default: default)")
	allowSignup := fs.Bool("allow-signup", true, "with --first-party: users may sign up through the token API (if the pool allows it too)")
	admin := fs.Bool("admin", false, "admin client: may use the admin API with a client_credentials token (adds the "+models.AdminScope+" scope)")
	adminPools := fs.String("admin-pools", "", "with --admin: the pools whose users it may manage (default: every pool)")
	var enc encryptionFlags
	enc.register(fs)
	var policy clientPolicyFlags
	policy.register(fs, true)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseArgs(fs, args); err != nil {
		return errUsage
	}
	cl, err := clientFromFlags(clientFlags{
		id: *id, name: cmp.Or(*name, *id), grants: *grants, responses: *responses, redirects: *redirects, scopes: *scopes,
		audience: *audience, authMethod: *authMethod, format: *format, postLogout: *postLogout, origins: *origins,
		public: *public, firstParty: *firstParty, pool: *pool, allowSignup: models.SignupAllowed(*firstParty, allowSignup), enc: enc,
		admin: *admin, adminPools: *adminPools, policy: policy,
	})
	if err != nil {
		return err
	}
	if *public && *secret != "" {
		return errors.New("--secret makes no sense with --public")
	}
	keyAuth := cl.TokenEndpointAuthMethod == models.AuthMethodPrivateKeyJWT
	if keyAuth && *secret != "" {
		return errors.New("--secret makes no sense with --token-endpoint-auth-method private_key_jwt: the client authenticates with its keys")
	}
	secretJWT := cl.TokenEndpointAuthMethod == models.AuthMethodClientSecretJWT
	plain := ""
	if !cl.Public && !keyAuth {
		if plain, err = newClientSecret(*secret, secretJWT); err != nil {
			return err
		}
	}
	a, err := c.openFromFlags(ctx, cf)
	if err != nil {
		return err
	}
	defer a.Close()
	if plain != "" {
		if cl.SecretHash, cl.SealedSecret, err = a.prov.StoredSecret(cl.ID, plain, secretJWT); err != nil {
			return err
		}
	}
	if err := a.store.RegisterClient(ctx, cl); err != nil {
		if errors.Is(err, models.ErrConflict) {
			return fmt.Errorf("a client with id %q already exists", cl.ID)
		}
		if errors.Is(err, models.ErrInvalid) {
			return validationError(err)
		}
		return err
	}
	if *asJSON {
		return writeJSON(c, toClientJSON(cl, plain))
	}
	fmt.Fprintf(c.stdout, "client_id:     %s\n", cl.ID)
	if plain != "" {
		fmt.Fprintf(c.stdout, "client_secret: %s\n(the secret is shown once; store it now)\n", plain)
	}
	return nil
}

// optionalBool is a boolean flag that remembers whether it was given: --admin, --admin=false, or absent.
type optionalBool struct{ set, value bool }

func (b *optionalBool) String() string   { return strconv.FormatBool(b.value) }
func (b *optionalBool) IsBoolFlag() bool { return true }
func (b *optionalBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("must be true or false")
	}
	b.set, b.value = true, v
	return nil
}

// clientsUpdate changes what an operator may change after registration: whether the client is an admin, and of
// which pools; its refresh policy; its token exchange policy; how it authenticates at the token endpoint, and its keys for private_key_jwt.
func clientsUpdate(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("clients update")
	id := fs.String("id", "", "client id")
	var admin optionalBool
	fs.Var(&admin, "admin", "make it an admin client (adds the "+models.AdminScope+" scope); --admin=false takes that away")
	adminPools := fs.String("admin-pools", "", "the pools whose users the admin client may manage, comma separated (\"-\": every pool)")
	authMethod := fs.String("token-endpoint-auth-method", "", "client_secret_basic, client_secret_post, client_secret_jwt (issues a new secret, shown once) or private_key_jwt (with a JWK Set); a confidential client's only")
	var policy clientPolicyFlags
	policy.register(fs, false)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseArgs(fs, args); err != nil {
		return errUsage
	}
	a, cl, err := c.openClient(ctx, cf, fs, *id)
	if err != nil {
		return err
	}
	defer a.Close()
	was := *cl // as stored: what a new secret depends on (NeedsNewSecret)
	if admin.set {
		cl.SetAdmin(admin.value)
	}
	switch *adminPools {
	case "":
	case "-":
		cl.AdminPools = nil
	default:
		cl.AdminPools = splitList(*adminPools)
	}
	if *authMethod != "" {
		cl.SetAuthMethod(*authMethod) // --token-endpoint-auth-signing-alg, applied below, may name the alg
	}
	if p := policy.apply(cl); len(p) > 0 {
		return errors.New(strings.Join(p, "; "))
	}
	// A client moving to client_secret_jwt (whose secret must be sealed; only its hash was kept) or gaining admin
	// power gets a new secret, stored with the rest in one transaction (models.Client.NeedsNewSecret).
	plain, update := "", a.store.UpdateClient
	if cl.NeedsNewSecret(&was) {
		sealed := cl.TokenEndpointAuthMethod == models.AuthMethodClientSecretJWT
		if plain, err = newClientSecret("", sealed); err != nil {
			return err
		}
		if cl.SecretHash, cl.SealedSecret, err = a.prov.StoredSecret(cl.ID, plain, sealed); err != nil {
			return err
		}
		update = a.store.UpdateClientAndSecret
	}
	if err := update(ctx, cl); errors.Is(err, models.ErrInvalid) {
		return validationError(err)
	} else if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c, toClientJSON(cl, plain))
	}
	fmt.Fprintf(c.stdout, "updated client %s\n", cl.ID)
	if plain != "" {
		fmt.Fprintf(c.stdout, "client_secret: %s\n(a new secret, for client_secret_jwt or new admin power: the old one no longer works; shown once)\n", plain)
	}
	return nil
}

// newClientSecret is the operator's chosen secret, checked, or a generated one: longer for client_secret_jwt,
// whose secret keys an HMAC of up to 512 bits.
func newClientSecret(chosen string, secretJWT bool) (string, error) {
	switch {
	case chosen == "" && secretJWT:
		return provider.GenerateClientSecretJWT(), nil
	case chosen == "":
		return provider.GenerateClientSecret(), nil
	}
	if err := provider.CheckClientSecret(chosen); err != nil {
		return "", fmt.Errorf("--secret: %w", err)
	}
	if secretJWT {
		if err := provider.CheckClientSecretJWT(chosen); err != nil {
			return "", fmt.Errorf("--secret: %w", err)
		}
	}
	return chosen, nil
}

func writeJSON(c *cli, v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// idArg takes an id from --id or the first positional argument.
func idArg(fs *flag.FlagSet, flagValue string, what string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if fs.NArg() == 1 {
		return fs.Arg(0), nil
	}
	return "", fmt.Errorf("give the %s as --id or as the one argument", what)
}

func clientsList(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("clients list")
	asJSON := fs.Bool("json", false, "print JSON")
	return c.withApp(ctx, fs, cf, args, func(a *app) error {
		list, err := a.store.ListClients(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			out := make([]clientJSON, 0, len(list))
			for i := range list {
				out = append(out, toClientJSON(&list[i], ""))
			}
			return writeJSON(c, out)
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT ID\tNAME\tGRANT TYPES\tSCOPES\tPUBLIC")
		for _, cl := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", cl.ID, cl.Name, strings.Join(cl.GrantTypes, ","), strings.Join(cl.Scopes, " "), cl.Public)
		}
		return tw.Flush()
	})
}

func clientsGet(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("clients get")
	id := fs.String("id", "", "client id")
	if err := parseArgs(fs, args); err != nil {
		return errUsage
	}
	a, cl, err := c.openClient(ctx, cf, fs, *id)
	if err != nil {
		return err
	}
	defer a.Close()
	return writeJSON(c, toClientJSON(cl, ""))
}

func clientsDelete(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("clients delete")
	id := fs.String("id", "", "client id")
	if err := parseArgs(fs, args); err != nil {
		return errUsage
	}
	cid, err := idArg(fs, *id, "client id")
	if err != nil {
		return err
	}
	a, err := c.openFromFlags(ctx, cf)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.store.DeleteClient(ctx, cid); err != nil {
		return clientErr(cid, err)
	}
	fmt.Fprintf(c.stdout, "deleted client %s and its tokens\n", cid)
	return nil
}

func clientsRotateSecret(ctx context.Context, c *cli, args []string) error {
	fs, cf := c.newFlagSet("clients rotate-secret")
	id := fs.String("id", "", "client id")
	secret := fs.String("secret", "", "new secret (default: generated); at least 32 characters (64 for client_secret_jwt)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseArgs(fs, args); err != nil {
		return errUsage
	}
	cid, err := idArg(fs, *id, "client id")
	if err != nil {
		return err
	}
	a, err := c.openFromFlags(ctx, cf)
	if err != nil {
		return err
	}
	defer a.Close()
	cl, err := clientNamed(ctx, a, cid)
	if err != nil {
		return err
	}
	if cl.Public {
		return fmt.Errorf("client %q is public and has no secret", cid)
	}
	secretJWT := cl.TokenEndpointAuthMethod == models.AuthMethodClientSecretJWT
	plain, err := newClientSecret(*secret, secretJWT)
	if err != nil {
		return err
	}
	hash, sealed, err := a.prov.StoredSecret(cid, plain, secretJWT)
	if err != nil {
		return err
	}
	if err := a.store.UpdateClientSecret(ctx, cid, hash, sealed); errors.Is(err, models.ErrInvalid) {
		return validationError(err)
	} else if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c, map[string]string{"client_id": cid, "client_secret": plain})
	}
	fmt.Fprintf(c.stdout, "client_id:     %s\nclient_secret: %s\n(the old secret no longer works; the new one is shown once)\n", cid, plain)
	return nil
}

// openClient opens the app and loads the client an operator named (by --id or the one argument); the caller
// closes the app.
func (c *cli) openClient(ctx context.Context, cf *configFlags, fs *flag.FlagSet, id string) (*app, *models.Client, error) {
	cid, err := idArg(fs, id, "client id")
	if err != nil {
		return nil, nil, err
	}
	a, err := c.openFromFlags(ctx, cf)
	if err != nil {
		return nil, nil, err
	}
	cl, err := clientNamed(ctx, a, cid)
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, cl, nil
}

// clientNamed loads the client an operator named, saying so plainly when there is none.
func clientNamed(ctx context.Context, a *app, id string) (*models.Client, error) {
	cl, err := a.store.ClientByID(ctx, id)
	if err != nil {
		return nil, clientErr(id, err)
	}
	return cl, nil
}

func clientErr(id string, err error) error {
	if errors.Is(err, models.ErrNotFound) {
		return fmt.Errorf("no client with id %q", id)
	}
	return err
}
