package registration

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/latchkey/latchkey/handlers/jsonapi"
	"github.com/latchkey/latchkey/models"
)

// Metadata is a client's registration as RFC 7591 §2 names it, the fields Latchkey keeps. Others are read and
// ignored, never echoed: client_uri, logo_uri, tos_uri, policy_uri, contacts, software_id, software_version and
// software_statement (the model has no place for them and nothing of ours would show them).
type Metadata struct {
	RedirectURIs                 []string        `json:"redirect_uris"`
	TokenEndpointAuthMethod      string          `json:"token_endpoint_auth_method"`
	GrantTypes                   []string        `json:"grant_types"`
	ResponseTypes                []string        `json:"response_types"`
	ClientName                   string          `json:"client_name"`
	Scope                        string          `json:"scope"`
	PostLogoutRedirectURIs       []string        `json:"post_logout_redirect_uris"`
	JWKS                         json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                      string          `json:"jwks_uri,omitempty"`
	TokenEndpointAuthSigningAlg  string          `json:"token_endpoint_auth_signing_alg,omitempty"`
	IDTokenEncryptedResponseAlg  string          `json:"id_token_encrypted_response_alg,omitempty"`
	IDTokenEncryptedResponseEnc  string          `json:"id_token_encrypted_response_enc,omitempty"`
	UserinfoEncryptedResponseAlg string          `json:"userinfo_encrypted_response_alg,omitempty"`
	UserinfoEncryptedResponseEnc string          `json:"userinfo_encrypted_response_enc,omitempty"`
	// Signed request objects (RFC 9101 §10.5, OpenID Connect Dynamic Client Registration §2).
	RequestObjectSigningAlg    string `json:"request_object_signing_alg,omitempty"`
	RequireSignedRequestObject bool   `json:"require_signed_request_object,omitempty"`
	// DPoPBoundAccessTokens: every token request must carry a DPoP proof (RFC 9449 §5.2).
	DPoPBoundAccessTokens bool `json:"dpop_bound_access_tokens,omitempty"`
	// Logout (OpenID Connect Back-Channel Logout 1.0 §2.2, Front-Channel Logout 1.0 §2).
	BackchannelLogoutURI              string `json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired  bool   `json:"backchannel_logout_session_required,omitempty"`
	FrontchannelLogoutURI             string `json:"frontchannel_logout_uri,omitempty"`
	FrontchannelLogoutSessionRequired bool   `json:"frontchannel_logout_session_required,omitempty"`

	// Only in an update (RFC 7592 §2.2); never stored.
	ClientID     string `json:"-"`
	ClientSecret string `json:"-"`
}

// ParseMetadata reads a registration request body: one JSON object whose known fields have the types RFC 7591
// gives them (unknown fields are ignored, a null is an omitted field). A malformed body or a field of the wrong
// type is an *jsonapi.Error invalid_client_metadata naming the field.
func ParseMetadata(body []byte) (Metadata, error) {
	var m Metadata
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return m, metadataError("The body must be one JSON object of client metadata.")
	}
	var p []string
	str := func(name string, dst *string) {
		if raw, ok := fields[name]; ok && json.Unmarshal(raw, dst) != nil {
			p = append(p, name+": must be a string")
		}
	}
	list := func(name string, dst *[]string) {
		if raw, ok := fields[name]; ok && json.Unmarshal(raw, dst) != nil {
			p = append(p, name+": must be an array of strings")
		}
	}
	list("redirect_uris", &m.RedirectURIs)
	str("token_endpoint_auth_method", &m.TokenEndpointAuthMethod)
	list("grant_types", &m.GrantTypes)
	list("response_types", &m.ResponseTypes)
	str("client_name", &m.ClientName)
	str("scope", &m.Scope)
	list("post_logout_redirect_uris", &m.PostLogoutRedirectURIs)
	str("token_endpoint_auth_signing_alg", &m.TokenEndpointAuthSigningAlg)
	str("id_token_encrypted_response_alg", &m.IDTokenEncryptedResponseAlg)
	str("id_token_encrypted_response_enc", &m.IDTokenEncryptedResponseEnc)
	str("userinfo_encrypted_response_alg", &m.UserinfoEncryptedResponseAlg)
	str("userinfo_encrypted_response_enc", &m.UserinfoEncryptedResponseEnc)
	str("jwks_uri", &m.JWKSURI)
	str("request_object_signing_alg", &m.RequestObjectSigningAlg)
	boolean := func(name string, dst *bool) {
		if raw, ok := fields[name]; ok && json.Unmarshal(raw, dst) != nil {
			p = append(p, name+": must be a boolean")
		}
	}
	boolean("require_signed_request_object", &m.RequireSignedRequestObject)
	boolean("dpop_bound_access_tokens", &m.DPoPBoundAccessTokens)
	str("backchannel_logout_uri", &m.BackchannelLogoutURI)
	boolean("backchannel_logout_session_required", &m.BackchannelLogoutSessionRequired)
	str("frontchannel_logout_uri", &m.FrontchannelLogoutURI)
	boolean("frontchannel_logout_session_required", &m.FrontchannelLogoutSessionRequired)
	str("client_id", &m.ClientID)
	str("client_secret", &m.ClientSecret)
	if raw, ok := fields["jwks"]; ok && string(raw) != "null" {
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			p = append(p, `jwks: must be a JWK Set object {"keys": [...]}`)
		} else {
			m.JWKS = raw
		}
	}
	if len(p) > 0 {
		return m, metadataError(strings.Join(p, "; "))
	}
	return m, nil
}

func metadataError(description string) *jsonapi.Error {
	return jsonapi.New(http.StatusBadRequest, jsonapi.InvalidClientMetadata, description)
}

// client maps m onto the client it registers: the one place request metadata becomes a models.Client. RFC 7591
// §2's defaults apply: grant_types [authorization_code], response_types [code] (none for a client without the
// authorization_code grant), token_endpoint_auth_method client_secret_basic, none meaning a public client; an
// omitted scope is every scope the policy allows. A key of jwks with "use": "enc" is the client's encryption key
// (OpenID Connect Registration §2), the others its signing keys (private_key_jwt).
func (m Metadata) client(id string, pol models.RegistrationPolicy) (*models.Client, error) {
	c := &models.Client{
		ID:                                id,
		Name:                              m.ClientName,
		RedirectURIs:                      m.RedirectURIs,
		GrantTypes:                        m.GrantTypes,
		ResponseTypes:                     m.ResponseTypes,
		Scopes:                            strings.Fields(m.Scope),
		TokenEndpointAuthMethod:           m.TokenEndpointAuthMethod,
		PostLogoutRedirectURIs:            m.PostLogoutRedirectURIs,
		Pool:                              pol.Pool,
		TokenEndpointAuthSigningAlg:       m.TokenEndpointAuthSigningAlg,
		IDTokenEncryptedResponseAlg:       m.IDTokenEncryptedResponseAlg,
		IDTokenEncryptedResponseEnc:       m.IDTokenEncryptedResponseEnc,
		UserinfoEncryptedResponseAlg:      m.UserinfoEncryptedResponseAlg,
		UserinfoEncryptedResponseEnc:      m.UserinfoEncryptedResponseEnc,
		JWKSURI:                           m.JWKSURI,
		RequestObjectSigningAlg:           m.RequestObjectSigningAlg,
		RequireSignedRequestObject:        m.RequireSignedRequestObject,
		DPoPBoundAccessTokens:             m.DPoPBoundAccessTokens,
		BackchannelLogoutURI:              m.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired:  m.BackchannelLogoutSessionRequired,
		FrontchannelLogoutURI:             m.FrontchannelLogoutURI,
		FrontchannelLogoutSessionRequired: m.FrontchannelLogoutSessionRequired,
	}
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{"authorization_code"}
	}
	if len(c.ResponseTypes) == 0 && slices.Contains(c.GrantTypes, "authorization_code") {
		c.ResponseTypes = []string{"code"}
	}
	if c.TokenEndpointAuthMethod == "" {
		c.TokenEndpointAuthMethod = models.AuthMethodClientSecretBasic
	}
	c.Public = c.TokenEndpointAuthMethod == models.AuthMethodNone
	if len(c.Scopes) == 0 {
		c.Scopes = slices.Clone(pol.Scopes)
	}
	if len(m.JWKS) > 0 {
		sig, enc, err := splitJWKS(m.JWKS)
		if err != nil {
			return nil, metadataError("jwks: " + err.Error())
		}
		c.JWKS, c.EncryptionJWK = sig, enc
	}
	return c, nil
}

// splitJWKS parts a registered JWK Set into the signing keys (a set, "" if none) and the one encryption key (""
// if none). Whether the keys are usable is the client's rule (models.Client.Validate).
func splitJWKS(raw json.RawMessage) (sig, enc string, err error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if json.Unmarshal(raw, &set) != nil {
		return "", "", errors.New(`must be a JWK Set object {"keys": [...]}`)
	}
	var sigKeys []json.RawMessage
	for _, k := range set.Keys {
		var use struct {
			Use string `json:"use"`
		}
		_ = json.Unmarshal(k, &use) // a key that is no object is refused by the client's rule
		if use.Use != "enc" {
			sigKeys = append(sigKeys, k)
			continue
		}
		if enc != "" {
			return "", "", errors.New(`holds more than one key with "use": "enc"`)
		}
		enc = string(k)
	}
	if len(sigKeys) > 0 || len(set.Keys) == 0 {
		b, _ := json.Marshal(map[string]any{"keys": nonNil(sigKeys)})
		sig = string(b)
	}
	return sig, enc, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// metadataOf is the metadata of a stored client, as the endpoint echoes it.
func metadataOf(c *models.Client) Metadata {
	m := Metadata{
		RedirectURIs:                      nonNil(c.RedirectURIs),
		TokenEndpointAuthMethod:           c.GetTokenEndpointAuthMethod(),
		GrantTypes:                        nonNil(c.GrantTypes),
		ResponseTypes:                     nonNil(c.ResponseTypes),
		ClientName:                        c.Name,
		Scope:                             strings.Join(c.Scopes, " "),
		PostLogoutRedirectURIs:            nonNil(c.PostLogoutRedirectURIs),
		TokenEndpointAuthSigningAlg:       c.TokenEndpointAuthSigningAlg,
		IDTokenEncryptedResponseAlg:       c.IDTokenEncryptedResponseAlg,
		IDTokenEncryptedResponseEnc:       c.IDTokenEncryptedResponseEnc,
		UserinfoEncryptedResponseAlg:      c.UserinfoEncryptedResponseAlg,
		UserinfoEncryptedResponseEnc:      c.UserinfoEncryptedResponseEnc,
		JWKSURI:                           c.JWKSURI,
		RequestObjectSigningAlg:           c.RequestObjectSigningAlg,
		RequireSignedRequestObject:        c.RequireSignedRequestObject,
		DPoPBoundAccessTokens:             c.DPoPBoundAccessTokens,
		BackchannelLogoutURI:              c.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired:  c.BackchannelLogoutSessionRequired,
		FrontchannelLogoutURI:             c.FrontchannelLogoutURI,
		FrontchannelLogoutSessionRequired: c.FrontchannelLogoutSessionRequired,
	}
	if c.JWKS != "" || c.EncryptionJWK != "" {
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if c.JWKS != "" {
			_ = json.Unmarshal([]byte(c.JWKS), &set) // Validate let in only valid sets
		}
		if c.EncryptionJWK != "" && json.Valid([]byte(c.EncryptionJWK)) {
			set.Keys = append(set.Keys, json.RawMessage(c.EncryptionJWK))
		}
		m.JWKS, _ = json.Marshal(map[string]any{"keys": nonNil(set.Keys)})
	}
	return m
}

// rfcFields names the client's fields (models' JSON names) as RFC 7591 does, where they differ.
var rfcFields = map[string]string{
	"name":           "client_name",
	"scopes":         "scope",
	"public":         "token_endpoint_auth_method",
	"encryption_jwk": "jwks",
}

// validationError answers a client the rules refused (RFC 7591 §3.2.2): invalid_redirect_uri when a redirect URI
// is at fault, naming those problems; otherwise invalid_client_metadata naming every problem by its field. nil if
// err is no ValidationError.
func validationError(err error) *jsonapi.Error {
	var v models.ValidationError
	if !errors.As(err, &v) {
		return nil
	}
	var redirect, other []string
	for _, f := range v {
		name := f.Field
		if n, ok := rfcFields[name]; ok {
			name = n
		}
		text := fmt.Sprintf("%s: %s", name, f.Problem)
		if f.Field == "redirect_uris" {
			redirect = append(redirect, text)
		} else {
			other = append(other, text)
		}
	}
	if len(redirect) > 0 {
		return jsonapi.New(http.StatusBadRequest, jsonapi.InvalidRedirectURI, strings.Join(redirect, "; "))
	}
	return metadataError(strings.Join(other, "; "))
}
