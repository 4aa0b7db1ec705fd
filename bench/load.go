package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// iteration is one unit of work a worker repeats: usually one request, sometimes a short sequence (authcode,
// revoke). It returns the latency to record, or an error to count.
type iteration func(ctx context.Context) (time.Duration, error)

// worker is one closed-loop virtual client: it sends its next request as soon as the previous one is answered.
type worker struct {
	id     int
	base   string // http://127.0.0.1:port
	client *http.Client
	rng    *rand.Rand
	buf    bytes.Buffer
	kept   *reservoir // tokens kept for verification after the run

	run iteration

	// Results of the measured phase.
	lat  []time.Duration
	errs errorCounts
}

func (w *worker) keep(tok string) { w.kept.add(tok, w.rng.IntN) }

// statusError is a response with a status the scenario did not expect.
type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.code, e.body) }

// badResponseError is an expected status with a body the scenario cannot use (no token, inactive token…).
type badResponseError struct{ msg string }

func (e *badResponseError) Error() string { return e.msg }

func badResponse(format string, args ...any) error {
	return &badResponseError{fmt.Sprintf(format, args...)}
}

// errorCounts classifies failures: unexpected HTTP statuses by code, usable-status-but-wrong-body, and
// transport errors (refused, reset, timeout).
type errorCounts struct {
	status    map[int]int
	bad       int
	transport int
	first     string // the first error's text, for the notes
}

func (e *errorCounts) add(err error) {
	var se *statusError
	var be *badResponseError
	switch {
	case errors.As(err, &se):
		if e.status == nil {
			e.status = map[int]int{}
		}
		e.status[se.code]++
	case errors.As(err, &be):
		e.bad++
	default:
		e.transport++
	}
	if e.first == "" {
		e.first = err.Error()
	}
}

func (e *errorCounts) merge(o errorCounts) {
	for k, v := range o.status {
		if e.status == nil {
			e.status = map[int]int{}
		}
		e.status[k] += v
	}
	e.bad += o.bad
	e.transport += o.transport
	if e.first == "" {
		e.first = o.first
	}
}

func (e *errorCounts) total() int {
	n := e.bad + e.transport
	for _, v := range e.status {
		n += v
	}
	return n
}

func (e *errorCounts) server5xx() int {
	n := 0
	for k, v := range e.status {
		if k >= 500 {
			n += v
		}
	}
	return n
}

// wantRedirect, as the wanted status, accepts any 3xx.
const wantRedirect = -3

// call sends one request and reads the whole answer into the worker's buffer; the returned body is valid until
// the next call. A status other than want is a *statusError.
func (w *worker) call(ctx context.Context, c *http.Client, method, path, contentType, body string, header func(http.Header), want int) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	url := path
	if strings.HasPrefix(path, "/") {
		url = w.base + path
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if header != nil {
		header(req.Header)
	}
	if c == nil {
		c = w.client
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	w.buf.Reset()
	_, err = w.buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return resp, nil, err
	}
	ok := resp.StatusCode == want || (want == wantRedirect && resp.StatusCode >= 300 && resp.StatusCode < 400)
	if !ok {
		snippet := w.buf.String()
		if len(snippet) > 160 {
			snippet = snippet[:160] + "…"
		}
		return resp, nil, &statusError{code: resp.StatusCode, body: strings.TrimSpace(snippet)}
	}
	return resp, w.buf.Bytes(), nil
}

// newTransport is a keep-alive transport sized for c concurrent workers on one host, with no proxy.
func newTransport(c int) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        c,
		MaxIdleConnsPerHost: c,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
}

func noFollow(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// phaseResult is what one measured phase produced.
type phaseResult struct {
	ops     int
	elapsed time.Duration
	lat     latencySummary
	errs    errorCounts
	kept    []string
}

// runPhase lets every worker loop until `until` (or until stop is set), recording when record is true.
// Requests still in flight at the deadline finish (bounded by the context's grace) and count; the elapsed
// time runs until the last one returns.
func runPhase(ctx context.Context, workers []*worker, until time.Time, stop *atomic.Bool, record bool) phaseResult {
	grace := 10 * time.Second
	pctx, cancel := context.WithDeadline(ctx, until.Add(grace))
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for _, w := range workers {
		w.lat, w.errs = w.lat[:0], errorCounts{}
		wg.Go(func() {
			for time.Now().Before(until) && (stop == nil || !stop.Load()) && ctx.Err() == nil {
				lat, err := w.run(pctx)
				if !record {
					continue
				}
				if err != nil {
					if ctx.Err() != nil {
						return // interrupted: not the server's fault
					}
					w.errs.add(err)
					continue
				}
				w.lat = append(w.lat, lat)
			}
		})
	}
	wg.Wait()
	res := phaseResult{elapsed: time.Since(start)}
	if !record {
		return res
	}
	per := make([][]time.Duration, len(workers))
	for i, w := range workers {
		per[i] = w.lat
		res.ops += len(w.lat)
		res.errs.merge(w.errs)
		res.kept = append(res.kept, w.kept.items...)
	}
	res.lat = summarize(per)
	return res
}
