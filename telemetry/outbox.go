package telemetry

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// OutboxCounts reads how many outbox messages wait for delivery and how many were given up (dead).
type OutboxCounts func(ctx context.Context) (pending, dead int64, err error)

// WatchOutbox reports the outbox's waiting and dead messages at every scrape, read from the database (the outbox
// is shared by every node, so every node reports the same figures). A scrape while the database cannot answer
// (within a second) reports neither: a missing series, not a wrong zero.
func (m *Metrics) WatchOutbox(counts OutboxCounts) {
	if m == nil {
		return
	}
	m.reg.MustRegister(&outboxCollector{counts: counts})
}

var (
	outboxPending = prometheus.NewDesc("latchkey_outbox_pending_messages",
		"Outbox messages (back-channel logout) not yet delivered and not given up, on every node's shared database.", nil, nil)
	outboxDead = prometheus.NewDesc("latchkey_outbox_dead_messages",
		"Outbox messages given up after their retries (kept 7 days); see the server's WARN lines for why.", nil, nil)
)

type outboxCollector struct{ counts OutboxCounts }

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- outboxPending
	ch <- outboxDead
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	pending, dead, err := c.counts(ctx)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(outboxPending, prometheus.GaugeValue, float64(pending))
	ch <- prometheus.MustNewConstMetric(outboxDead, prometheus.GaugeValue, float64(dead))
}
