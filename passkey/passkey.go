// Package passkey is Latchkey's WebAuthn relying party (go-webauthn), with no HTTP of its own: the begin and
// finish of the three ceremonies — registering a passkey, a passkey as a second factor, and a passwordless
// sign-in with a discoverable passkey — over the storage of package models. A begin stores its session data as
// a ceremony row keyed by the challenge's hash (models.Store.SaveCeremony, CeremonyTTL); the finish takes that
// row in one statement (TakeCeremony) before it verifies anything, so any node finishes what another began, and
// a challenge answers once: a replayed assertion, or a second finish racing the first, finds nothing.
//
// The relying party id is the issuer's host and the only origin the issuer's, unless configured (Config): a parent
// domain and more origins, for apps on a sibling host that use the token API.
package passkey

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"github.com/latchkey/latchkey/models"
)

// CeremonyTTL is how long a begun ceremony can be finished.
const CeremonyTTL = 5 * time.Minute

// MaxResponseBytes bounds a finish's credential JSON: a real one is a few kilobytes.
const MaxResponseBytes = 64 << 10

// Store is what the ceremonies read and write.
type Store interface {
	Factors(ctx context.Context, userID string) ([]models.Factor, error)
	AddPasskey(ctx context.Context, f models.Factor) error
	PasskeyByCredentialID(ctx context.Context, credentialID string) (*models.Factor, error)
	UsePasskey(ctx context.Context, factorID string, signCount uint32, backupState bool) (*models.User, error)
	SaveCeremony(ctx context.Context, challenge string, c models.Ceremony, ttl time.Duration) error
	TakeCeremony(ctx context.Context, challenge, kind string) (*models.Ceremony, error)
}

// Errors of a finish, for the caller to answer (none is a fault of ours).
var (
	// ErrMalformed: the body is not a WebAuthn credential response.
	ErrMalformed = errors.New("not a webauthn credential response")
	// ErrCeremony: the challenge is unknown, expired, already answered, of another kind, or bound to another user
	// or challenge: begin again.
	ErrCeremony = errors.New("unknown, expired or used webauthn challenge")
	// ErrRejected: the response did not verify (wrong origin or relying party, bad signature, unknown passkey,
	// no user verification where required, a counter that went back, a disabled user).
	ErrRejected = errors.New("webauthn response rejected")
	// ErrNoPasskey: the user has no passkey to ask for.
	ErrNoPasskey = errors.New("no passkey")
)

// Config names the relying party. Zero values take the issuer's host and origin.
type Config struct {
	Issuer      string
	DisplayName string   // shown by the authenticator; default "Latchkey"
	RPID        string   // default: the issuer's host
	Origins     []string // accepted besides the issuer's origin (apps on hosts within RPID)
}

// RP is the relying party.
type RP struct {
	wa    *webauthn.WebAuthn
	store Store
	// Log is the logger of a request's context (request.Logger); nil: slog.Default.
	Log func(context.Context) *slog.Logger
}

// New builds the relying party of cfg over store.
func New(cfg Config, store Store) (*RP, error) {
	u, err := url.Parse(cfg.Issuer)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("passkey relying party: issuer %q is not an absolute URL", cfg.Issuer)
	}
	if cfg.RPID == "" {
		cfg.RPID = u.Hostname()
	}
	cfg.Origins = append([]string{u.Scheme + "://" + u.Host}, cfg.Origins...)
	if cfg.DisplayName == "" {
		cfg.DisplayName = "Latchkey"
	}
	wa, err := webauthn.New(&webauthn.Config{RPID: cfg.RPID, RPDisplayName: cfg.DisplayName, RPOrigins: cfg.Origins})
	if err != nil {
		return nil, fmt.Errorf("passkey relying party: %w", err)
	}
	return &RP{wa: wa, store: store}, nil
}

func (rp *RP) log(ctx context.Context) *slog.Logger {
	if rp.Log != nil {
		return rp.Log(ctx)
	}
	return slog.Default()
}

// Begun is a begun ceremony: Options for navigator.credentials.create or .get (the publicKey member inside),
// and Challenge, which names the ceremony (the finish finds it from the response's client data).
type Begun struct {
	Options   any    `json:"options"`
	Challenge string `json:"challenge_id"`
}

// account adapts a user and their passkeys to go-webauthn. The user handle is the user id: opaque, stable, and
// never an email.
type account struct {
	id, name, display string
	creds             []webauthn.Credential
}

func (a *account) WebAuthnID() []byte                         { return []byte(a.id) }
func (a *account) WebAuthnName() string                       { return a.name }
func (a *account) WebAuthnDisplayName() string                { return a.display }
func (a *account) WebAuthnCredentials() []webauthn.Credential { return a.creds }

var b64 = base64.RawURLEncoding

func credentialOf(f models.Factor) (webauthn.Credential, bool) {
	pk := f.Passkey
	if pk == nil || !f.Active() {
		return webauthn.Credential{}, false
	}
	id, err1 := b64.DecodeString(pk.CredentialID)
	key, err2 := b64.DecodeString(pk.PublicKey)
	if err1 != nil || err2 != nil {
		return webauthn.Credential{}, false
	}
	var aaguid []byte
	if a, err := uuid.Parse(pk.AAGUID); err == nil {
		aaguid = a[:]
	}
	transports := make([]protocol.AuthenticatorTransport, len(pk.Transports))
	for i, t := range pk.Transports {
		transports[i] = protocol.AuthenticatorTransport(t)
	}
	return webauthn.Credential{ID: id, PublicKey: key, AttestationType: pk.AttestationType, Transport: transports,
		Flags:         webauthn.CredentialFlags{UserPresent: true, BackupEligible: pk.BackupEligible, BackupState: pk.BackupState},
		Authenticator: webauthn.Authenticator{AAGUID: aaguid, SignCount: pk.SignCount}}, true
}

// accountOf loads u's passkeys.
func (rp *RP) accountOf(ctx context.Context, userID, email, name string) (*account, error) {
	factors, err := rp.store.Factors(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("load passkeys: %w", err)
	}
	a := &account{id: userID, name: email, display: name}
	if a.display == "" {
		a.display = email
	}
	for _, f := range factors {
		if c, ok := credentialOf(f); ok {
			a.creds = append(a.creds, c)
		}
	}
	return a, nil
}

// save records session under its challenge.
func (rp *RP) save(ctx context.Context, kind, userID, bind string, session *webauthn.SessionData, options any) (*Begun, error) {
	data, err := json.Marshal(session)
	if err != nil {
		return nil, fmt.Errorf("encode webauthn session: %w", err)
	}
	if err := rp.store.SaveCeremony(ctx, session.Challenge, models.Ceremony{Kind: kind, UserID: userID, BoundTo: bind, SessionData: string(data)}, CeremonyTTL); err != nil {
		return nil, err
	}
	return &Begun{Options: options, Challenge: session.Challenge}, nil
}

// take removes the ceremony of kind that challenge names and checks it is bound to bind (and, when userID is
// not "", begun for that user).
func (rp *RP) take(ctx context.Context, challenge, kind, userID, bind string) (*webauthn.SessionData, error) {
	if challenge == "" || len(challenge) > 128 {
		return nil, ErrCeremony
	}
	c, err := rp.store.TakeCeremony(ctx, challenge, kind)
	if errors.Is(err, models.ErrNotFound) {
		return nil, ErrCeremony
	} else if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(c.BoundTo), []byte(bind)) != 1 || (userID != "" && c.UserID != userID) {
		rp.log(ctx).Warn("webauthn challenge answered for another binding", "kind", kind, "user", userID)
		return nil, ErrCeremony
	}
	var session webauthn.SessionData
	if err := json.Unmarshal([]byte(c.SessionData), &session); err != nil {
		return nil, fmt.Errorf("decode webauthn session: %w", err)
	}
	return &session, nil
}

// BeginRegistration begins adding a passkey for user u: a discoverable credential (so it can sign in without a
// password), none of u's passkeys again, no attestation asked.
func (rp *RP) BeginRegistration(ctx context.Context, u *models.User) (*Begun, error) {
	a, err := rp.accountOf(ctx, u.ID, u.Email, u.Name)
	if err != nil {
		return nil, err
	}
	if len(a.creds) >= models.MaxPasskeys {
		return nil, models.ErrTooManyPasskeys
	}
	exclude := make([]protocol.CredentialDescriptor, len(a.creds))
	for i, c := range a.creds {
		exclude[i] = c.Descriptor()
	}
	creation, session, err := rp.wa.BeginRegistration(a,
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{ResidentKey: protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: protocol.ResidentKeyRequired(), UserVerification: protocol.VerificationPreferred}),
		webauthn.WithExclusions(exclude), webauthn.WithConveyancePreference(protocol.PreferNoAttestation))
	if err != nil {
		return nil, fmt.Errorf("begin webauthn registration: %w", err)
	}
	return rp.save(ctx, models.CeremonyRegister, u.ID, "", session, creation)
}

// FinishRegistration verifies body (the JSON of the PublicKeyCredential navigator.credentials.create returned)
// against u's begun registration and stores the passkey as name. models.ErrConflict if that credential is
// registered already.
func (rp *RP) FinishRegistration(ctx context.Context, u *models.User, name string, body []byte) (*models.Factor, error) {
	parsed, err := protocol.ParseCredentialCreationResponseBytes(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	session, err := rp.take(ctx, parsed.Response.CollectedClientData.Challenge, models.CeremonyRegister, u.ID, "")
	if err != nil {
		return nil, err
	}
	a, err := rp.accountOf(ctx, u.ID, u.Email, u.Name)
	if err != nil {
		return nil, err
	}
	cred, err := rp.wa.CreateCredential(a, *session, parsed)
	if err != nil {
		return nil, rp.rejected(ctx, "registration", u.ID, err)
	}
	id, err := models.NewFactorID()
	if err != nil {
		return nil, fmt.Errorf("new factor id: %w", err)
	}
	pk := &models.Passkey{CredentialID: b64.EncodeToString(cred.ID), PublicKey: b64.EncodeToString(cred.PublicKey), SignCount: cred.Authenticator.SignCount,
		BackupEligible: cred.Flags.BackupEligible, BackupState: cred.Flags.BackupState, AttestationType: cred.AttestationType}
	if a, err := uuid.FromBytes(cred.Authenticator.AAGUID); err == nil && a != uuid.Nil {
		pk.AAGUID = a.String()
	}
	pk.Transports = knownTransports(cred.Transport)
	f := models.Factor{ID: id, UserID: u.ID, Kind: models.FactorWebAuthn, Name: name, Passkey: pk}
	if err := rp.store.AddPasskey(ctx, f); err != nil {
		return nil, err
	}
	return rp.store.PasskeyByCredentialID(ctx, pk.CredentialID)
}

// transports are the ones WebAuthn defines: a client may name any text (hints for the browser, never a check).
var transports = []protocol.AuthenticatorTransport{protocol.USB, protocol.NFC, protocol.BLE, protocol.SmartCard, protocol.Hybrid, protocol.Internal}

// knownTransports keeps of a registration's transports those WebAuthn defines, once each: the rest is the
// client's text, which is not stored.
func knownTransports(given []protocol.AuthenticatorTransport) []string {
	var out []string
	for _, t := range transports {
		if slices.Contains(given, t) {
			out = append(out, string(t))
		}
	}
	return out
}

// rejected logs why a response did not verify (the library's detail is for the log, not the client).
func (rp *RP) rejected(ctx context.Context, ceremony, userID string, err error) error {
	detail := err.Error()
	var perr *protocol.Error
	if errors.As(err, &perr) {
		detail = perr.Details + " " + perr.DevInfo
	}
	rp.log(ctx).Info("webauthn response rejected", "ceremony", ceremony, "user", userID, "reason", detail)
	return ErrRejected
}

// BeginSecondFactor begins an assertion of one of user userID's passkeys, bound to bind (the caller's hash of
// the MFA challenge the assertion will answer). ErrNoPasskey if the user has none.
func (rp *RP) BeginSecondFactor(ctx context.Context, userID, bind string) (*Begun, error) {
	a, err := rp.accountOf(ctx, userID, "", "")
	if err != nil {
		return nil, err
	}
	if len(a.creds) == 0 {
		return nil, ErrNoPasskey
	}
	assertion, session, err := rp.wa.BeginLogin(a, webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return nil, fmt.Errorf("begin webauthn assertion: %w", err)
	}
	return rp.save(ctx, models.CeremonyMFA, userID, bind, session, assertion)
}

// BeginSignIn begins a passwordless sign-in with a discoverable passkey, user verification required, bound to
// bind (the caller's: e.g. the client being signed in to).
func (rp *RP) BeginSignIn(ctx context.Context, bind string) (*Begun, error) {
	assertion, session, err := rp.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, fmt.Errorf("begin webauthn sign-in: %w", err)
	}
	return rp.save(ctx, models.CeremonySignIn, "", bind, session, assertion)
}

// FinishSecondFactor verifies body (the JSON of navigator.credentials.get's PublicKeyCredential) as user
// userID's answer to the assertion begun with bind, records the use, and returns the user.
func (rp *RP) FinishSecondFactor(ctx context.Context, userID, bind string, body []byte) (*models.User, error) {
	return rp.finish(ctx, models.CeremonyMFA, userID, bind, body)
}

// FinishSignIn verifies body as the answer to a passwordless sign-in begun with bind and returns the user whose
// passkey it is, able to start a session; models.ErrEmailNotVerified for a right passkey of a user whose pool
// requires the verified email they lack.
func (rp *RP) FinishSignIn(ctx context.Context, bind string, body []byte) (*models.User, error) {
	return rp.finish(ctx, models.CeremonySignIn, "", bind, body)
}

func (rp *RP) finish(ctx context.Context, kind, userID, bind string, body []byte) (*models.User, error) {
	if len(body) > MaxResponseBytes {
		return nil, ErrMalformed
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	session, err := rp.take(ctx, parsed.Response.CollectedClientData.Challenge, kind, userID, bind)
	if err != nil {
		return nil, err
	}
	f, err := rp.store.PasskeyByCredentialID(ctx, b64.EncodeToString(parsed.RawID))
	if errors.Is(err, models.ErrNotFound) {
		rp.log(ctx).Info("webauthn response rejected", "ceremony", kind, "user", userID, "reason", "unknown passkey")
		return nil, ErrRejected
	} else if err != nil {
		return nil, err
	}
	if userID != "" && f.UserID != userID {
		rp.log(ctx).Warn("webauthn response rejected", "ceremony", kind, "user", userID, "reason", "passkey of another user")
		return nil, ErrRejected
	}
	a, err := rp.accountOf(ctx, f.UserID, "", "")
	if err != nil {
		return nil, err
	}
	var cred *webauthn.Credential
	if kind == models.CeremonySignIn {
		_, cred, err = rp.wa.ValidatePasskeyLogin(func(rawID, userHandle []byte) (webauthn.User, error) {
			if string(userHandle) != f.UserID {
				return nil, errors.New("user handle is not the passkey's user")
			}
			return a, nil
		}, *session, parsed)
	} else {
		cred, err = rp.wa.ValidateLogin(a, *session, parsed)
	}
	if err != nil {
		return nil, rp.rejected(ctx, kind, f.UserID, err)
	}
	count := parsed.Response.AuthenticatorData.Counter
	if cred.Authenticator.CloneWarning {
		rp.log(ctx).Warn("passkey refused: signature counter went back (a cloned authenticator?)", "user", f.UserID, "factor", f.ID, "counter", count, "recorded", f.Passkey.SignCount)
		return nil, ErrRejected
	}
	u, err := rp.store.UsePasskey(ctx, f.ID, count, parsed.Response.AuthenticatorData.Flags.HasBackupState())
	switch {
	case errors.Is(err, models.ErrSignCount):
		rp.log(ctx).Warn("passkey refused: signature counter did not increase (a cloned authenticator, or a concurrent use)", "user", f.UserID, "factor", f.ID, "counter", count)
		return nil, ErrRejected
	case errors.Is(err, models.ErrEmailNotVerified) && kind != models.CeremonySignIn:
		// A second factor: the first one answered for the email already.
		return u, nil
	case errors.Is(err, models.ErrEmailNotVerified):
		rp.log(ctx).Info("webauthn sign-in refused", "reason", "email not verified", "user", f.UserID)
		return nil, err
	case errors.Is(err, models.ErrUserDisabled), errors.Is(err, models.ErrNotFound):
		rp.log(ctx).Info("webauthn response rejected", "ceremony", kind, "user", f.UserID, "reason", "account disabled or passkey removed")
		return nil, ErrRejected
	case err != nil:
		return nil, err
	}
	return u, nil
}

// Bind is the binding of a ceremony to what it answers (e.g. "api-mfa" and an MFA challenge token): a hash, so no
// secret is stored with the ceremony.
func Bind(parts ...string) string {
	sum := sha256.Sum256([]byte("latchkey/passkey-bind\x00" + strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:])
}
