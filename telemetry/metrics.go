// Package telemetry is Latchkey's metrics and tracing: a Prometheus registry with the server's counters and
// histograms, an HTTP middleware that labels requests by route template, collectors read at scrape time
// (database pools, dropped log records), and OpenTelemetry tracing that exports only when the standard
// OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT variable asks for it.
//
// Every method of *Metrics is safe on a nil receiver and then does nothing, so a handler may hold a nil *Metrics
// in tests and in commands that serve no metrics.
package telemetry

import (
	"database/sql"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/latchkey/latchkey/keys"
)

// Throttle kinds: which limit refused a request (ThrottleRejected).
const (
	ThrottleIP      = "ip"      // too many attempts from one client address
	ThrottleAccount = "account" // too many failed sign-ins for one account
	ThrottleSignup  = "signup"  // too many sign-ups
	ThrottlePAR     = "par"     // too many pushed authorization requests
	// ThrottleRegistration: too many open dynamic client registrations from one address.
	ThrottleRegistration = "registration"
	ThrottleDevice       = "device"    // too many device authorization requests from one address
	ThrottleUserCode     = "user_code" // too many wrong device user codes from one address
)

// labelOther stands for a label value outside the fixed set, so a client cannot grow a metric's label set.
const labelOther = "other"

var throttleKinds = []string{ThrottleIP, ThrottleAccount, ThrottleSignup, ThrottlePAR, ThrottleRegistration, ThrottleDevice, ThrottleUserCode}
var rotationOutcomes = []string{keys.RotationScheduled, keys.RotationImmediate, keys.RotationConflict, keys.RotationFailed}
var httpMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions}

// Options configure New.
type Options struct {
	// GrantTypes are the grant types token issuance is counted by (provider.GrantTypes()); any other is
	// counted as "other".
	GrantTypes []string
}

// Metrics is the server's Prometheus registry and the instruments the rest of the server reports to.
type Metrics struct {
	reg        *prometheus.Registry
	grantTypes []string

	requests  *prometheus.CounterVec   // route, method, status
	latency   *prometheus.HistogramVec // route, method
	tokens    *prometheus.CounterVec   // grant_type
	throttled *prometheus.CounterVec   // kind
	rotations *prometheus.CounterVec   // alg, outcome
}

// New makes a registry holding the Go runtime and process collectors and Latchkey's own metrics.
func New(opts Options) *Metrics {
	m := &Metrics{
		reg:        prometheus.NewRegistry(),
		grantTypes: slices.Clone(opts.GrantTypes),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_http_requests_total",
			Help: "HTTP requests answered, by route template, method and status code.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "latchkey_http_request_duration_seconds",
			Help: "Time from the router's match to the handler's return, by route template and method.",
			// Static documents answer in tens of microseconds, token requests in milliseconds, password
			// sign-ins (argon2id) in tens to hundreds of milliseconds.
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_tokens_issued_total",
			Help: "Successful token endpoint responses, by grant type.",
		}, []string{"grant_type"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_throttle_rejections_total",
			Help: "Requests refused by a throttle, by which limit refused them (ip, account, signup, par).",
		}, []string{"kind"}),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_signing_key_rotations_total",
			Help: "Signing key rotations attempted by this node, by algorithm and outcome (scheduled, immediate, conflict, failed).",
		}, []string{"alg", "outcome"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.latency, m.tokens, m.throttled, m.rotations,
	)
	// Known label values start at zero, so a rate() over them exists before the first event.
	for _, g := range append(slices.Clone(m.grantTypes), labelOther) {
		m.tokens.WithLabelValues(g)
	}
	for _, k := range throttleKinds {
		m.throttled.WithLabelValues(k)
	}
	return m
}

// Handler serves the registry in the Prometheus exposition format (mount it on /metrics of a private listener).
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Registry is the underlying registry, for tests and for collectors this package does not define.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// TokenIssued counts one successful token response for grantType.
func (m *Metrics) TokenIssued(grantType string) {
	if m == nil {
		return
	}
	if !slices.Contains(m.grantTypes, grantType) {
		grantType = labelOther
	}
	m.tokens.WithLabelValues(grantType).Inc()
}

// ThrottleRejected counts one request refused by the throttle of kind (ThrottleIP, ThrottleAccount,
// ThrottleSignup, ThrottlePAR).
func (m *Metrics) ThrottleRejected(kind string) {
	if m == nil {
		return
	}
	if !slices.Contains(throttleKinds, kind) {
		kind = labelOther
	}
	m.throttled.WithLabelValues(kind).Inc()
}

// KeyRotation counts one rotation attempt's outcome (keys.RotationScheduled, …) for alg; it has the shape of
// keys.Options.OnRotation.
func (m *Metrics) KeyRotation(alg, outcome string) {
	if m == nil {
		return
	}
	if !slices.Contains(rotationOutcomes, outcome) {
		outcome = labelOther
	}
	m.rotations.WithLabelValues(alg, outcome).Inc()
}

// WatchDBPools reports the connection pools that pools returns (name -> stats) at every scrape.
func (m *Metrics) WatchDBPools(pools func() map[string]sql.DBStats) {
	if m == nil {
		return
	}
	m.reg.MustRegister(&dbPoolsCollector{pools: pools})
}

// WatchLogDrops reports dropped log records (logwriter.Writer.Dropped) at every scrape.
func (m *Metrics) WatchLogDrops(dropped func() uint64) {
	if m == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "latchkey_log_records_dropped_total",
		Help: "Log records dropped because the log output (stderr) could not keep up.",
	}, func() float64 { return float64(dropped()) }))
}

// observe records one answered request.
func (m *Metrics) observe(route, method string, status int, elapsed time.Duration) {
	if !slices.Contains(httpMethods, method) {
		method = labelOther
	}
	m.requests.WithLabelValues(route, method, statusText(status)).Inc()
	m.latency.WithLabelValues(route, method).Observe(elapsed.Seconds())
}

// statusText avoids strconv's allocation for the common codes.
func statusText(code int) string {
	switch code {
	case 200:
		return "200"
	case 201:
		return "201"
	case 204:
		return "204"
	case 302:
		return "302"
	case 303:
		return "303"
	case 400:
		return "400"
	case 401:
		return "401"
	case 403:
		return "403"
	case 404:
		return "404"
	case 405:
		return "405"
	case 429:
		return "429"
	case 500:
		return "500"
	case 503:
		return "503"
	}
	if code < 100 || code > 999 {
		return labelOther
	}
	return string([]byte{byte('0' + code/100), byte('0' + code/10%10), byte('0' + code%10)})
}

// dbPoolsCollector reads sql.DBStats of each pool when Prometheus scrapes.
type dbPoolsCollector struct {
	pools func() map[string]sql.DBStats
}

var (
	dbMaxOpen = prometheus.NewDesc("latchkey_db_max_open_connections",
		"Maximum number of open connections the pool allows.", []string{"pool"}, nil)
	dbOpen = prometheus.NewDesc("latchkey_db_open_connections",
		"Established connections, in use and idle.", []string{"pool"}, nil)
	dbInUse = prometheus.NewDesc("latchkey_db_in_use_connections",
		"Connections in use.", []string{"pool"}, nil)
	dbIdle = prometheus.NewDesc("latchkey_db_idle_connections",
		"Idle connections.", []string{"pool"}, nil)
	dbWaitCount = prometheus.NewDesc("latchkey_db_wait_count_total",
		"Times a request waited for a connection.", []string{"pool"}, nil)
	dbWaitSeconds = prometheus.NewDesc("latchkey_db_wait_duration_seconds_total",
		"Total time spent waiting for a connection.", []string{"pool"}, nil)
	dbClosedIdle = prometheus.NewDesc("latchkey_db_max_idle_closed_total",
		"Connections closed because of the idle-connection limit.", []string{"pool"}, nil)
	dbClosedIdleTime = prometheus.NewDesc("latchkey_db_max_idle_time_closed_total",
		"Connections closed because they were idle too long.", []string{"pool"}, nil)
	dbClosedLifetime = prometheus.NewDesc("latchkey_db_max_lifetime_closed_total",
		"Connections closed because they reached their maximum lifetime.", []string{"pool"}, nil)
)

func (c *dbPoolsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dbMaxOpen, dbOpen, dbInUse, dbIdle, dbWaitCount, dbWaitSeconds,
		dbClosedIdle, dbClosedIdleTime, dbClosedLifetime} {
		ch <- d
	}
}

func (c *dbPoolsCollector) Collect(ch chan<- prometheus.Metric) {
	for name, s := range c.pools() {
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, name)
		}
		counter := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, name)
		}
		gauge(dbMaxOpen, float64(s.MaxOpenConnections))
		gauge(dbOpen, float64(s.OpenConnections))
		gauge(dbInUse, float64(s.InUse))
		gauge(dbIdle, float64(s.Idle))
		counter(dbWaitCount, float64(s.WaitCount))
		counter(dbWaitSeconds, s.WaitDuration.Seconds())
		counter(dbClosedIdle, float64(s.MaxIdleClosed))
		counter(dbClosedIdleTime, float64(s.MaxIdleTimeClosed))
		counter(dbClosedLifetime, float64(s.MaxLifetimeClosed))
	}
}
