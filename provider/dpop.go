package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/dpop"
	"github.com/latchkey/latchkey/faults"
	"github.com/latchkey/latchkey/keys"
)

// DPoP (RFC 9449) composed around fosite, which knows nothing of it. The HTTP layer hands each request's proof to
// CheckDPoP: verified (package dpop) against the request's method and its URL as the issuer spells it (so a proxy
// in front changes nothing), its jti spent once in the database. At the token endpoints the key's thumbprint then
// rides in the context (WithDPoPKey) to dpopBinding, which writes it into the session before anything is issued:
// JWT access tokens carry it as cnf.jkt, introspection answers it, and the resource side (handlers/grant) refuses
// the token without a proof by that key. A public client's refresh token is bound to the same key (RFC 9449 §5);
// a confidential client's is not, its authentication already binding it.

// ErrInvalidDPoPProof and ErrUseDPoPNonce are RFC 9449's token endpoint errors.
var (
	ErrInvalidDPoPProof = &fosite.RFC6749Error{
		ErrorField: dpop.CodeInvalidProof, DescriptionField: "The DPoP proof is invalid.", CodeField: http.StatusBadRequest,
	}
	ErrUseDPoPNonce = &fosite.RFC6749Error{
		ErrorField: dpop.CodeUseNonce, DescriptionField: "Authorization server requires nonce in DPoP proof.", CodeField: http.StatusBadRequest,
	}
)

// DPoPAlgorithms are the proof algorithms discovery advertises.
func DPoPAlgorithms() []string { return dpop.AlgorithmNames() }

type dpopKeyCtx struct{}

// WithDPoPKey carries the thumbprint of a token request's verified proof to the token endpoint handlers.
func WithDPoPKey(ctx context.Context, jkt string) context.Context {
	return context.WithValue(ctx, dpopKeyCtx{}, jkt)
}

func dpopKeyOf(ctx context.Context) string {
	jkt, _ := ctx.Value(dpopKeyCtx{}).(string)
	return jkt
}

// DPoPKey is the thumbprint of the key an access token is bound to; "" for a bearer token.
func (s *Session) DPoPKey() string {
	if s == nil {
		return ""
	}
	return s.DPoPJKT
}

// DPoPNonce is the nonce to send in DPoP-Nonce; "" when the server does not require nonces.
func (p *Provider) DPoPNonce() string {
	if p.nonces == nil {
		return ""
	}
	return p.nonces.Current(p.options.Now())
}

// CheckDPoP verifies the DPoP proof of r, if any, for the URL issuer+r.URL.Path, and spends its jti. accessToken
// is the token it accompanies at a resource ("" at a token endpoint). It answers the key's thumbprint, "" when
// the request carries no proof; a refused proof is a *dpop.Error, anything else the store's failure.
func (p *Provider) CheckDPoP(ctx context.Context, r *http.Request, accessToken string) (string, error) {
	proofs := r.Header.Values(dpop.HeaderName)
	switch len(proofs) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", &dpop.Error{Code: dpop.CodeInvalidProof, Description: "Send one DPoP header, not several."}
	}
	now := p.options.Now()
	want := dpop.Expect{Method: r.Method, URL: p.Issuer + r.URL.Path, AccessToken: accessToken, Now: now}
	if p.nonces != nil {
		want.Nonce = func(n string) bool { return p.nonces.Valid(n, now) }
	}
	proof, err := dpop.Verify(proofs[0], want)
	if err != nil {
		return "", err
	}
	// Reserve, then act: the proof counts only once its jti is recorded, on whichever node first.
	if err := p.store.SpendDPoPProof(ctx, proof.JKT, proof.JTI, proof.SpendUntil); err != nil {
		if errors.Is(err, fosite.ErrJTIKnown) {
			return "", &dpop.Error{Code: dpop.CodeInvalidProof, Description: "This DPoP proof was already used; make a new one for each request."}
		}
		faults.Note(ctx, err)
		return "", fmt.Errorf("spend dpop proof: %w", err)
	}
	return proof.JKT, nil
}

// TokenEndpointDPoPError turns CheckDPoP's error into what a token endpoint answers.
func TokenEndpointDPoPError(err error) error {
	var de *dpop.Error
	if !errors.As(err, &de) {
		return fosite.ErrTemporarilyUnavailable.WithWrap(err).WithDebug(err.Error())
	}
	if de.Code == dpop.CodeUseNonce {
		return ErrUseDPoPNonce.WithHint(de.Description)
	}
	return ErrInvalidDPoPProof.WithHint(de.Description)
}

func newDPoPNonces(opts Options) *dpop.Nonces {
	if !opts.DPoPNonce {
		return nil
	}
	return dpop.NewNonces(keys.Derive(opts.SystemSecret, "dpop-nonce"), 0)
}

// dpopClient is implemented by clients that may require DPoP (RFC 9449 §5.2 dpop_bound_access_tokens).
type dpopClient interface{ RequiresDPoP() bool }

// dpopBinding is the pair of token endpoint handlers that bind a grant's tokens to the proof's key, in the manner
// of clientProof: record, composed first, writes the key (or none) into the session in
// PopulateTokenEndpointResponse, before any handler issues; require, composed last, refuses in
// HandleTokenEndpointRequest, after fosite loaded the grant and before anything is issued or rotated. Neither
// handles a grant itself.
type dpopBinding struct{ require bool }

var _ fosite.TokenEndpointHandler = dpopBinding{}

func (dpopBinding) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }
func (dpopBinding) CanHandleTokenEndpointRequest(context.Context, fosite.AccessRequester) bool {
	return true
}

func (h dpopBinding) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if !h.require {
		return fosite.ErrUnknownRequest
	}
	jkt := dpopKeyOf(ctx)
	if c, ok := r.GetClient().(dpopClient); ok && c.RequiresDPoP() && jkt == "" {
		return ErrInvalidDPoPProof.WithHint("This client's access tokens are DPoP-bound: send a DPoP proof with every token request.")
	}
	sess, ok := r.GetSession().(*Session)
	if ok && r.GetGrantTypes().ExactOne("refresh_token") && sess.DPoPJKT != "" && r.GetClient().IsPublic() && sess.DPoPJKT != jkt {
		// RFC 9449 §5: a public client's refresh token is usable only with a proof by the key it was issued to.
		return fosite.ErrInvalidGrant.WithHint("This refresh token is bound to a DPoP key; send a DPoP proof signed with that key.")
	}
	return fosite.ErrUnknownRequest
}

func (h dpopBinding) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, _ fosite.AccessResponder) error {
	if sess, ok := r.GetSession().(*Session); ok && !h.require {
		sess.DPoPJKT = dpopKeyOf(ctx)
	}
	return fosite.ErrUnknownRequest
}
