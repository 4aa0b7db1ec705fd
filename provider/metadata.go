package provider

import "slices"

// Paths of the endpoints the provider's handlers serve. Discovery and the router both read these, so what is
// advertised is what is mounted.
const (
	PathAuthorize  = "/oauth2/auth"
	PathToken      = "/oauth2/token"
	PathIntrospect = "/oauth2/introspect"
	PathRevoke     = "/oauth2/revoke"
	PathPAR        = "/oauth2/par"
	// PathRegister is the dynamic client registration endpoint (RFC 7591); PathRegister/{client_id} is a
	// registered client's configuration endpoint (RFC 7592).
	PathRegister        = "/oauth2/register"
	PathUserInfo        = "/userinfo"
	PathEndSession      = "/oauth2/logout"
	PathJWKS            = "/.well-known/jwks.json"
	PathOpenIDConfig    = "/.well-known/openid-configuration"
	PathOAuthServerMeta = "/.well-known/oauth-authorization-server"
)

// Scopes with meaning to Latchkey. Clients may register any other scope for their own APIs.
const (
	ScopeOpenID        = "openid"
	ScopeProfile       = "profile"
	ScopeEmail         = "email"
	ScopeRoles         = "roles"
	ScopeOfflineAccess = "offline_access"
)

// StandardScopes lists the scopes Latchkey itself understands, in the order consent pages show them.
var StandardScopes = []string{ScopeOpenID, ScopeProfile, ScopeEmail, ScopeRoles, ScopeOfflineAccess}

// Metadata is the RFC 8414 / OpenID Connect Discovery document. It lists only what the composed provider does.
type Metadata struct {
	Issuer                             string `json:"issuer"`
	AuthorizationEndpoint              string `json:"authorization_endpoint"`
	TokenEndpoint                      string `json:"token_endpoint"`
	UserInfoEndpoint                   string `json:"userinfo_endpoint"`
	JWKSURI                            string `json:"jwks_uri"`
	EndSessionEndpoint                 string `json:"end_session_endpoint"`
	IntrospectionEndpoint              string `json:"introspection_endpoint"`
	RevocationEndpoint                 string `json:"revocation_endpoint"`
	PushedAuthorizationRequestEndpoint string `json:"pushed_authorization_request_endpoint"`
	DeviceAuthorizationEndpoint        string `json:"device_authorization_endpoint,omitempty"`
	// RegistrationEndpoint is set only while dynamic client registration is on (LATCHKEY_REGISTRATION).
	RegistrationEndpoint                      string   `json:"registration_endpoint,omitempty"`
	RequirePushedAuthorizationRequests        bool     `json:"require_pushed_authorization_requests"`
	ScopesSupported                           []string `json:"scopes_supported"`
	ResponseTypesSupported                    []string `json:"response_types_supported"`
	ResponseModesSupported                    []string `json:"response_modes_supported"`
	GrantTypesSupported                       []string `json:"grant_types_supported"`
	CodeChallengeMethodsSupported             []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethodsSupported         []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported"`
	SubjectTypesSupported                     []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported          []string `json:"id_token_signing_alg_values_supported"`
	AccessTokenSigningAlgValuesSupported      []string `json:"access_token_signing_alg_values_supported"`
	IDTokenEncryptionAlgValuesSupported       []string `json:"id_token_encryption_alg_values_supported"`
	IDTokenEncryptionEncValuesSupported       []string `json:"id_token_encryption_enc_values_supported"`
	UserInfoEncryptionAlgValuesSupported      []string `json:"userinfo_encryption_alg_values_supported"`
	UserInfoEncryptionEncValuesSupported      []string `json:"userinfo_encryption_enc_values_supported"`
	PromptValuesSupported                     []string `json:"prompt_values_supported"`
	ClaimsSupported                           []string `json:"claims_supported"`
	ClaimsParameterSupported                  bool     `json:"claims_parameter_supported"`
	RequestParameterSupported                 bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported              bool     `json:"request_uri_parameter_supported"`
	RequireRequestURIRegistration             bool     `json:"require_request_uri_registration"`
	// OpenID Connect Front-Channel and Back-Channel Logout 1.0: the signed-out page loads each participating
	// client's frontchannel_logout_uri with iss and sid; a logout token with sid goes to each backchannel_logout_uri.
	FrontchannelLogoutSupported        bool `json:"frontchannel_logout_supported"`
	FrontchannelLogoutSessionSupported bool `json:"frontchannel_logout_session_supported"`
	BackchannelLogoutSupported         bool `json:"backchannel_logout_supported"`
	BackchannelLogoutSessionSupported  bool `json:"backchannel_logout_session_supported"`

	// RFC 9207: every authorization response carries iss (authzresponse.go).
	AuthorizationResponseIssParameterSupported bool `json:"authorization_response_iss_parameter_supported"`

	// The algorithms a private_key_jwt or client_secret_jwt assertion may be signed with, per endpoint (RFC 8414 §2).
	TokenEndpointAuthSigningAlgValuesSupported         []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	IntrospectionEndpointAuthSigningAlgValuesSupported []string `json:"introspection_endpoint_auth_signing_alg_values_supported"`
	RevocationEndpointAuthSigningAlgValuesSupported    []string `json:"revocation_endpoint_auth_signing_alg_values_supported"`

	// Signed request objects (RFC 9101; request_object.go): by value, never alg none. request_uri is only ever
	// one our PAR endpoint gave (we fetch no URL), so request_uri_parameter_supported stays false, as OpenID
	// Connect Discovery means it (the OP fetches the object); PAR is advertised by its endpoint.
	RequestObjectSigningAlgValuesSupported []string `json:"request_object_signing_alg_values_supported"`
	// DPoPSigningAlgValuesSupported are the algorithms a DPoP proof may use (RFC 9449 §5.1).
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported"`
}

// Metadata describes this provider.
func (p *Provider) Metadata() Metadata {
	iss := p.Issuer
	secretMethods := []string{"client_secret_basic", "client_secret_post", "private_key_jwt", AuthMethodClientSecretJWT}
	return Metadata{
		Issuer:                                    iss,
		AuthorizationEndpoint:                     iss + PathAuthorize,
		TokenEndpoint:                             iss + PathToken,
		UserInfoEndpoint:                          iss + PathUserInfo,
		JWKSURI:                                   iss + PathJWKS,
		EndSessionEndpoint:                        iss + PathEndSession,
		IntrospectionEndpoint:                     iss + PathIntrospect,
		RevocationEndpoint:                        iss + PathRevoke,
		PushedAuthorizationRequestEndpoint:        iss + PathPAR,
		DeviceAuthorizationEndpoint:               p.deviceAuthorizationEndpoint(),
		ScopesSupported:                           slices.Clone(StandardScopes),
		ResponseTypesSupported:                    []string{"code", ResponseTypeIDToken},
		ResponseModesSupported:                    []string{"query", "fragment", "form_post"},
		GrantTypesSupported:                       append(p.GrantTypes(), GrantTypeImplicit),
		CodeChallengeMethodsSupported:             []string{"S256"},
		TokenEndpointAuthMethodsSupported:         append(slices.Clone(secretMethods), "none"),
		IntrospectionEndpointAuthMethodsSupported: slices.Clone(secretMethods),
		RevocationEndpointAuthMethodsSupported:    append(slices.Clone(secretMethods), "none"),
		SubjectTypesSupported:                     []string{"public"},
		IDTokenSigningAlgValuesSupported:          []string{p.options.SigningAlg},
		AccessTokenSigningAlgValuesSupported:      []string{p.options.SigningAlg},
		IDTokenEncryptionAlgValuesSupported:       slices.Clone(SupportedEncryptionAlgs),
		IDTokenEncryptionEncValuesSupported:       slices.Clone(SupportedEncryptionEncs),
		UserInfoEncryptionAlgValuesSupported:      slices.Clone(SupportedEncryptionAlgs),
		UserInfoEncryptionEncValuesSupported:      slices.Clone(SupportedEncryptionEncs),
		PromptValuesSupported:                     []string{"none", "login", "consent"},
		ClaimsSupported: []string{
			"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "amr",
			"name", "email", "email_verified", "roles", ExtrasClaim, "updated_at",
		},

		AuthorizationResponseIssParameterSupported: true,
		RequestParameterSupported:                  true,
		FrontchannelLogoutSupported:                true,
		FrontchannelLogoutSessionSupported:         true,
		BackchannelLogoutSupported:                 true,
		BackchannelLogoutSessionSupported:          true,
		RequestObjectSigningAlgValuesSupported:     RequestObjectSigningAlgs(),
		DPoPSigningAlgValuesSupported:              DPoPAlgorithms(),

		TokenEndpointAuthSigningAlgValuesSupported:         assertionSigningAlgs(),
		IntrospectionEndpointAuthSigningAlgValuesSupported: assertionSigningAlgs(),
		RevocationEndpointAuthSigningAlgValuesSupported:    assertionSigningAlgs(),
	}
}

// GrantTypes lists the grants the token endpoint accepts: exactly the fosite handlers New composed. The password
// grant is always listed: discovery says what the server supports, a client's registration what it may use, and
// only first-party clients that register it may (models.Client.Validate). A list that followed the clients
// registered would be a snapshot of one node at start-up, wrong as soon as a client is created elsewhere.
// Discovery adds the implicit grant, which the authorization endpoint serves (implicit.go).
func (p *Provider) GrantTypes() []string {
	grants := []string{"authorization_code", "refresh_token", "client_credentials", GrantTypePassword, GrantTypeTokenExchange}
	if p.options.DeviceCodes != nil {
		grants = append(grants, GrantTypeDeviceCode)
	}
	return grants
}

// deviceAuthorizationEndpoint is RFC 8628's endpoint, when the device code grant is composed.
func (p *Provider) deviceAuthorizationEndpoint() string {
	if p.options.DeviceCodes == nil {
		return ""
	}
	return p.Issuer + PathDeviceAuthorization
}
