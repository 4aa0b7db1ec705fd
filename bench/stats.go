package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// latencySummary is what the report shows of one run's latencies.
type latencySummary struct {
	n             int
	p50, p90, p99 time.Duration
	max           time.Duration
}

// summarize merges the per-worker latency slices (every successful iteration's latency, nothing binned) and
// reads the percentiles off the sorted whole.
func summarize(perWorker [][]time.Duration) latencySummary {
	total := 0
	for _, l := range perWorker {
		total += len(l)
	}
	all := make([]time.Duration, 0, total)
	for _, l := range perWorker {
		all = append(all, l...)
	}
	slices.Sort(all)
	s := latencySummary{n: len(all)}
	if len(all) == 0 {
		return s
	}
	s.p50, s.p90, s.p99 = percentile(all, 50), percentile(all, 90), percentile(all, 99)
	s.max = all[len(all)-1]
	return s
}

// percentile is the nearest-rank percentile of an ascending slice: the smallest value with at least p% of the
// samples at or below it. p is in (0, 100]; an empty slice gives 0.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// reservoir keeps a uniform random sample of at most cap(items) strings from a stream (Algorithm R).
type reservoir struct {
	items []string
	seen  int
}

func newReservoir(size int) *reservoir { return &reservoir{items: make([]string, 0, size)} }

func (r *reservoir) add(s string, randN func(int) int) {
	r.seen++
	if len(r.items) < cap(r.items) {
		r.items = append(r.items, s)
		return
	}
	if j := randN(r.seen); j < len(r.items) {
		r.items[j] = s
	}
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat; 100 on every Linux we run on.
const clockTicks = 100

// procCPU is a process's user and system CPU time in clock ticks.
type procCPU struct{ utime, stime uint64 }

func (c procCPU) seconds() float64 { return float64(c.utime+c.stime) / clockTicks }

// parseProcStat reads utime and stime (fields 14 and 15) from the contents of /proc/<pid>/stat. The command
// name (field 2) is in parentheses and may itself contain spaces and parentheses, so fields are counted from
// the last ')'.
func parseProcStat(b []byte) (procCPU, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procCPU{}, errors.New("parse /proc stat: no ')' after the command name")
	}
	// After ") ": field 3 (state) is index 0, so field k is index k-3.
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return procCPU{}, fmt.Errorf("parse /proc stat: %d fields after the command name, want at least 13", len(f))
	}
	ut, err := strconv.ParseUint(string(f[14-3]), 10, 64)
	if err != nil {
		return procCPU{}, fmt.Errorf("parse /proc stat utime: %w", err)
	}
	st, err := strconv.ParseUint(string(f[15-3]), 10, 64)
	if err != nil {
		return procCPU{}, fmt.Errorf("parse /proc stat stime: %w", err)
	}
	return procCPU{utime: ut, stime: st}, nil
}

// parseProcStatusKB reads one "Key:   1234 kB" line (VmRSS, VmHWM, …) from the contents of /proc/<pid>/status
// and returns the value in bytes.
func parseProcStatusKB(b []byte, key string) (int64, error) {
	prefix := []byte(key + ":")
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("parse /proc status %s: unexpected %q", key, line)
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc status %s: %w", key, err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("parse /proc status: no %s line", key)
}

// parseMachineBusy returns the busy clock ticks of all CPUs together from the contents of /proc/stat: user, nice,
// system, irq, softirq and steal of the "cpu" line (guest time is already counted in user).
func parseMachineBusy(b []byte) (uint64, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return 0, errors.New("parse /proc/stat: no aggregate cpu line")
	}
	var busy uint64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system [idle iowait] irq softirq steal
		v, err := strconv.ParseUint(string(f[i]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc/stat: %w", err)
		}
		busy += v
	}
	return busy, nil
}
