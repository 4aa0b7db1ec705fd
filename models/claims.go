package models

// registeredClaims are the claim names Latchkey sets itself in tokens and userinfo (JWT, OpenID Connect and
// RFC 9068 registered names). A user's extras may never use them: the store refuses them (see encodeExtras),
// whichever entry point writes the extras.
var registeredClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true, "auth_time": true,
	"nonce": true, "acr": true, "amr": true, "azp": true, "at_hash": true, "c_hash": true, "sid": true,
	"scope": true, "client_id": true, "cnf": true, "typ": true,
}

// IsRegisteredClaim reports whether name is a claim Latchkey sets itself, which a user's extras may not use.
func IsRegisteredClaim(name string) bool { return registeredClaims[name] }

// ValidateExtras checks custom claims by the rule the store applies to a user's extras (no empty key, no
// registered claim name, bounded size), for extras that travel in a grant without being stored on the user.
func ValidateExtras(extras map[string]any) error {
	_, err := encodeExtras(extras)
	return err
}
