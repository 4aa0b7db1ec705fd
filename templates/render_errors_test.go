package templates

import (
	"errors"
	"html/template"
	"net/http"
	"net/http/httptest"
	"testing"
)

type failingWriter struct{ *httptest.ResponseRecorder }

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

// Callers log a failed render as a server fault and a failed write as a client that went away; the error says
// which it was.
func TestRenderErrorsSayWhatFailed(t *testing.T) {
	r := newRenderer(t)
	err := r.LoggedOut(failingWriter{httptest.NewRecorder()}, http.StatusOK, LoggedOutPage{Message: "bye"})
	if !errors.Is(err, ErrWrite) {
		t.Errorf("failed write = %v, want ErrWrite", err)
	}
	boom := template.Must(template.New("boom").Funcs(template.FuncMap{
		"fail": func() (string, error) { return "", errors.New("boom") },
	}).Parse(`{{fail}}`))
	err = r.render(httptest.NewRecorder(), http.StatusOK, boom, nil, nil)
	if err == nil || errors.Is(err, ErrWrite) {
		t.Errorf("failed template = %v, want an error that is not ErrWrite", err)
	}
}
