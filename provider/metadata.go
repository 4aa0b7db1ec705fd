package provider

// Paths of the endpoints the provider's handlers serve. Discovery and the router both read these, so what is
// advertised is what is mounted.
const (
	PathToken           = "/oauth2/token"
	PathIntrospect      = "/oauth2/introspect"
	PathRevoke          = "/oauth2/revoke"
	PathJWKS            = "/.well-known/jwks.json"
	PathOpenIDConfig    = "/.well-known/openid-configuration"
	PathOAuthServerMeta = "/.well-known/oauth-authorization-server"
)

// Metadata is the RFC 8414 / OpenID Connect Discovery document. It lists only what the composed provider does.
type Metadata struct {
	Issuer                                    string   `json:"issuer"`
	TokenEndpoint                             string   `json:"token_endpoint"`
	IntrospectionEndpoint                     string   `json:"introspection_endpoint"`
	RevocationEndpoint                        string   `json:"revocation_endpoint"`
	JWKSURI                                   string   `json:"jwks_uri"`
	ScopesSupported                           []string `json:"scopes_supported,omitempty"`
	ResponseTypesSupported                    []string `json:"response_types_supported"`
	GrantTypesSupported                       []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported         []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported"`
	SubjectTypesSupported                     []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported          []string `json:"id_token_signing_alg_values_supported"`
	AccessTokenSigningAlgValuesSupported      []string `json:"access_token_signing_alg_values_supported,omitempty"`
	ClaimsSupported                           []string `json:"claims_supported,omitempty"`
}

// Metadata describes this provider.
func (p *Provider) Metadata() Metadata {
	iss := p.Issuer
	secretMethods := []string{"client_secret_basic", "client_secret_post"}
	return Metadata{
		Issuer:                            iss,
		TokenEndpoint:                     iss + PathToken,
		IntrospectionEndpoint:             iss + PathIntrospect,
		RevocationEndpoint:                iss + PathRevoke,
		JWKSURI:                           iss + PathJWKS,
		ResponseTypesSupported:            []string{},
		GrantTypesSupported:               []string{"client_credentials"},
		TokenEndpointAuthMethodsSupported: secretMethods,
		IntrospectionEndpointAuthMethodsSupported: []string{"client_secret_basic"},
		RevocationEndpointAuthMethodsSupported:    secretMethods,
		SubjectTypesSupported:                     []string{"public"},
		IDTokenSigningAlgValuesSupported:          []string{p.options.SigningAlg},
		AccessTokenSigningAlgValuesSupported:      []string{p.options.SigningAlg},
	}
}

// GrantTypes lists the grants the token endpoint accepts: exactly the fosite handlers New composed.
func (p *Provider) GrantTypes() []string {
	return []string{"client_credentials"}
}
