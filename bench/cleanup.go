package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"
)

// cleanupResult is the cleanup measurement on a seeded database.
type cleanupResult struct {
	initial, remaining int64
	elapsed            time.Duration // server ready → no expired rows left (or the timeout)
	maxRate            float64       // the fastest fall over a window of at least 5 s, rows/s (0: none)
	polls              int
	progress           string // how rows left were read
	batch              string // the cleanup batch, as the report names it
	load               row    // client_credentials meanwhile
	timedOut           bool
}

// cleanupProgress turns readings of the expired rows left into the fastest rate of fall.
type cleanupProgress struct {
	hist    []progressReading
	maxRate float64 // rows/s; 0 until two comparable readings are 5 s apart
}

type progressReading struct {
	at    time.Time
	left  int64
	exact bool // counted, rather than derived from PostgreSQL's deleted-row counter
}

// add records a reading. The rate is taken over windows of at least 5 s, which the counter's once-a-second steps
// barely move, and only between readings taken the same way: a counted end against a counter end would add
// the counter's publishing lag to the fall.
func (p *cleanupProgress) add(r progressReading) {
	for i := len(p.hist) - 1; i >= 0; i-- {
		h := p.hist[i]
		if span := r.at.Sub(h.at); span >= 5*time.Second && h.exact == r.exact {
			p.maxRate = max(p.maxRate, float64(h.left-r.left)/span.Seconds())
			break
		}
	}
	p.hist = append(p.hist, r)
}

// measureCleanup restarts the server with a 1s cleanup interval and reads the number of expired access-token
// rows every second until it reaches zero, while client_credentials load runs against the server.
func measureCleanup(ctx context.Context, db *benchDB, bin string, env []string, base, logPath string, t *target, c int, o options, srvp **serverProc) (*cleanupResult, error) {
	cr := &cleanupResult{batch: "the server's default batch for this database"}
	if o.cleanupBatch > 0 {
		cr.batch = fmt.Sprintf("`LATCHKEY_CLEANUP_BATCH=%d`", o.cleanupBatch)
	}
	var err error
	if cr.initial, err = db.countExpired(ctx); err != nil {
		return nil, fmt.Errorf("count expired rows: %w", err)
	}
	// Expired rows left: on PostgreSQL from the table's deleted-row counter (the load only inserts, so every
	// delete is cleanup's), counted only to confirm the end; on SQLite counted each time.
	remaining := func(ctx context.Context) (int64, bool, error) {
		n, err := db.countExpired(ctx)
		return n, true, err
	}
	cr.progress = "expired rows counted every second"
	if db.kind == "postgres" {
		cr.progress = "rows left read every second from PostgreSQL's deleted-row counter, `pg_stat_user_tables.n_tup_del`, and counted with `COUNT(*)` only when that counter stalls or reaches zero"
		base0, err := db.settledDeletedAccessRows(ctx)
		if err != nil {
			return nil, fmt.Errorf("read deleted-row counter: %w", err)
		}
		last, stalls := base0, 0
		remaining = func(ctx context.Context) (int64, bool, error) {
			n, err := db.deletedAccessRows(ctx)
			if err != nil {
				return 0, false, err
			}
			if n == last {
				stalls++
			} else {
				last, stalls = n, 0
			}
			// Backends publish the counter about once a second, so one poll without movement is normal; two
			// mean cleanup is done or idle (an idle backend may hold its last counts for up to 10 s). Count then,
			// and when the counter says nothing is left.
			if left := cr.initial - (n - base0); left > 0 && stalls < 2 {
				return left, false, nil
			}
			n, err = db.countExpired(ctx)
			return n, true, err
		}
	}
	srv, err := startServer(ctx, bin, env, base, logPath)
	if err != nil {
		return nil, err
	}
	*srvp = srv
	ready := time.Now()

	sc := scenarioByName("client_credentials")
	tr := newTransport(c)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: noFollow}
	workers := make([]*worker, c)
	for i := range workers {
		workers[i] = &worker{id: i, base: base, client: client, rng: rand.New(rand.NewPCG(uint64(i), 7)), kept: newReservoir(1)}
		workers[i].run, _ = sc.prepare(ctx, t, workers[i])
	}
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		progress := cleanupProgress{}
		progress.add(progressReading{ready, cr.initial, true})
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				stop.Store(true)
				return
			case <-tick.C:
			}
			n, exact, err := remaining(ctx)
			if err != nil {
				continue
			}
			now := time.Now()
			cr.polls++
			progress.add(progressReading{now, n, exact})
			cr.maxRate = progress.maxRate
			cr.remaining, cr.elapsed = n, now.Sub(ready)
			if n == 0 {
				stop.Store(true)
				return
			}
			if now.Sub(ready) > o.cleanupTimeout {
				cr.timedOut = true
				if n, err := db.countExpired(ctx); err == nil { // the counter may lag; the report needs the rows left
					cr.remaining = n
				}
				stop.Store(true)
				return
			}
		}
	}()
	cpu0, _ := srv.cpu()
	srv.resetPeakRSS()
	logOff := srv.logSize()
	snap0 := takeCPUSnapshot(ctx, srv, db)
	res := runPhase(ctx, workers, ready.Add(o.cleanupTimeout+5*time.Second), &stop, true)
	other := otherCores(snap0, takeCPUSnapshot(ctx, srv, db))
	<-done
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := row{scenario: "client_credentials during cleanup", c: c, ops: res.ops, lat: res.lat, errs: res.errs, cpuPer1k: -1, pctCeiling: -1, dbCPUPer1k: -1, otherCores: other}
	r.rps = float64(res.ops) / res.elapsed.Seconds()
	if cpu1, err := srv.cpu(); err == nil && res.ops > 0 {
		r.cpuPer1k = (cpu1.seconds() - cpu0.seconds()) / (float64(res.ops) / 1000)
	}
	r.peakRSS, _ = srv.status("VmHWM")
	r.logWarn, r.logErr, r.firstLogErr = srv.logLevels(logOff)
	cr.load = r
	return cr, nil
}
