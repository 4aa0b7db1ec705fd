package browser

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/latchkey/latchkey/handlers/page"
	"github.com/latchkey/latchkey/templates"
)

// A pending authorization request sealed into the sign-in form lives ChallengeTTL: after that, signing in to it
// shows the "expired" page (400), never a 500. The store is never reached, so none is given.
func TestSealedSignInRequestExpires(t *testing.T) {
	pages, err := templates.New()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	now := t0
	h := &Browser{Pages: pages, Secret: []byte("0123456789abcdef0123456789abcdef"), Now: func() time.Time { return now }}
	router := mux.NewRouter()
	h.Mount(router)
	srv := httptest.NewServer(router)
	defer srv.Close()

	sealed, err := h.sealPending(pendingRequest{Query: "client_id=app", ClientID: "app", RequestedAt: t0, ExpiresAt: t0.Add(h.ChallengeTTL)})
	if err != nil {
		t.Fatal(err)
	}
	if h.ChallengeTTL != 15*time.Minute {
		t.Errorf("default ChallengeTTL = %v, want 15m", h.ChallengeTTL)
	}
	if _, err := h.openPending(sealed, t0.Add(h.ChallengeTTL-time.Second)); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	// Sealed under another secret (another installation), it does not open either.
	other := &Browser{Pages: pages, Secret: []byte("another secret, another server!!"), Now: h.Now}
	other.Mount(mux.NewRouter())
	if _, err := other.openPending(sealed, t0); err == nil {
		t.Error("a request sealed by another server opened")
	}

	seed := strings.Repeat("c", 43)
	post := func(challenge string) (int, string) {
		form := url.Values{"csrf_token": {h.page().CSRFFor(seed)}, "challenge": {challenge}, "email": {"ada@example.com"}, "password": {"pw"}}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+PathLogin, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: page.CSRFCookie, Value: seed})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	now = t0.Add(h.ChallengeTTL)
	if status, body := post(sealed); status != http.StatusBadRequest || !strings.Contains(body, "This sign-in request has expired") {
		t.Errorf("signing in to an expired request: %d\n%s", status, body)
	}
}
