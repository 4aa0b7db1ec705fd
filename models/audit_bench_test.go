package models_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/reqmeta"
)

// benchSource is request metadata resolved as the HTTP layer resolves it (an address parsed from the peer).
type benchSource struct{}

func (benchSource) RequestMeta() reqmeta.Meta {
	host, _, _ := net.SplitHostPort("203.0.113.9:4711")
	a, _ := netip.ParseAddr(host)
	return reqmeta.Meta{RequestID: "abcdefghijkl-42", IP: a.String(), UserAgent: "bench/1.0"}
}

// BenchmarkTokenWriteCPU is the client_credentials token write (now with its token.issued event) in this
// process's CPU per token, not wall time: on PostgreSQL the backend's work is another process's, and the issue's
// budget is the server's CPU. The first request of each run pays the statement preparation.
func BenchmarkTokenWriteCPU(b *testing.B) {
	benchBackends(b, func(b *testing.B, s *models.Store) {
		req := benchRequest(b, s)
		n := 0
		var before, after syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
		for b.Loop() {
			n++
			ctx := reqmeta.Attach(context.Background(), benchSource{})
			if err := s.CreateAccessTokenSession(ctx, fmt.Sprintf("sig-%d", n), req); err != nil {
				b.Fatal(err)
			}
		}
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
		cpu := float64(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) / 1e3
		b.ReportMetric(cpu/float64(n), "cpu-µs/op")
	})
}

// BenchmarkTokenWriteCPUParallel is BenchmarkTokenWriteCPU with 16 writers at once per core (the harness's c=16
// on two cores): on SQLite concurrent token writes share transactions (token_batch.go).
func BenchmarkTokenWriteCPUParallel(b *testing.B) {
	benchBackends(b, func(b *testing.B, s *models.Store) {
		req := benchRequest(b, s)
		var n atomic.Int64
		var before, after syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				ctx := reqmeta.Attach(context.Background(), benchSource{})
				if err := s.CreateAccessTokenSession(ctx, fmt.Sprintf("sig-%d", n.Add(1)), req); err != nil {
					b.Error(err)
					return
				}
			}
		})
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
		cpu := float64(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) / 1e3
		b.ReportMetric(cpu/float64(n.Load()), "cpu-µs/op")
	})
}
