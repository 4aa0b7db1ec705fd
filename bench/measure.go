package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

type ceilingServer struct {
	URL string
	srv *http.Server
}

func startCeiling() (*ceilingServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &http.Server{Handler: ceilingHandler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.Serve(ln) }()
	return &ceilingServer{URL: "http://" + ln.Addr().String(), srv: s}, nil
}

func (c *ceilingServer) Close() { _ = c.srv.Close() }

// row is one line of the table.
type row struct {
	scenario       string
	c              int
	ops            int
	rps            float64
	lat            latencySummary
	errs           errorCounts
	peakRSS        int64   // bytes; 0 when not applicable
	startRSS       int64   // VmRSS when the measurement started
	peakIsLifetime bool    // VmHWM could not be reset: the figure is the process-lifetime peak
	cpuPer1k       float64 // server CPU seconds per 1,000 requests; <0 when not applicable
	dbCPUPer1k     float64 // PostgreSQL backends' CPU seconds per 1,000 requests; <0 when not applicable
	pctCeiling     float64 // <0 when not applicable
	verify         string
	logWarn        int
	logErr         int
	firstLogErr    string
	failed         string
	otherCores     float64 // CPU other processes on the machine took during the row
}

// runScenario measures one scenario at one concurrency. Failures to prepare are reported in the row, not
// returned, so one broken endpoint does not hide the others.
func runScenario(ctx context.Context, sc *scenario, t *target, c int, o options, srv *serverProc, db *benchDB, ceilingURL, debugBase string) row {
	r := row{scenario: sc.name, c: c, cpuPer1k: -1, pctCeiling: -1, dbCPUPer1k: -1}
	base := t.base
	if !sc.server {
		base = ceilingURL
	}
	tr := newTransport(c)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: noFollow}
	workers := make([]*worker, c)
	seed := rand.Uint64()
	for i := range workers {
		workers[i] = &worker{id: i, base: base, client: client, rng: rand.New(rand.NewPCG(seed, uint64(i))), kept: newReservoir(200)}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	// Two at a time: some preparations sign in (argon2, 19 MiB each), and 64 at once would leave the server
	// holding a gigabyte the measured row would then be charged for.
	sem := make(chan struct{}, 2)
	for _, w := range workers {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			it, err := sc.prepare(ctx, t, w)
			if err != nil {
				mu.Lock()
				if r.failed == "" {
					r.failed = err.Error()
				}
				mu.Unlock()
				return
			}
			w.run = it
		})
	}
	wg.Wait()
	if r.failed != "" {
		return r
	}
	if o.warmup > 0 {
		runPhase(ctx, workers, time.Now().Add(o.warmup), nil, false)
	}

	var cpu0 procCPU
	var logOff int64
	snap0 := takeCPUSnapshot(ctx, srv, db)
	if sc.server {
		cpu0, _ = srv.cpu()
		r.peakIsLifetime = !srv.resetPeakRSS()
		r.startRSS, _ = srv.status("VmRSS")
		logOff = srv.logSize()
	}
	var profileDone chan error
	if sc.server && debugBase != "" {
		profileDone = make(chan error, 1)
		path := filepath.Join(o.profileDir, fmt.Sprintf("%s-c%d.pprof", sc.name, c))
		go func() { profileDone <- fetchProfile(ctx, debugBase, o.duration, path) }()
	}
	res := runPhase(ctx, workers, time.Now().Add(o.duration), nil, true)
	if profileDone != nil {
		if err := <-profileDone; err != nil {
			fmt.Fprintf(os.Stderr, "bench: profile of %s c=%d: %v\n", sc.name, c, err)
		}
	}
	r.ops, r.lat, r.errs = res.ops, res.lat, res.errs
	r.rps = float64(res.ops) / res.elapsed.Seconds()
	snap1 := takeCPUSnapshot(ctx, srv, db)
	r.otherCores = otherCores(snap0, snap1)
	if db.kind == "postgres" && sc.server && res.ops > 0 {
		r.dbCPUPer1k = float64(dbTicks(snap0, snap1)) / clockTicks / (float64(res.ops) / 1000)
	}
	if sc.server {
		if cpu1, err := srv.cpu(); err == nil && res.ops > 0 {
			r.cpuPer1k = (cpu1.seconds() - cpu0.seconds()) / (float64(res.ops) / 1000)
		}
		r.peakRSS, _ = srv.status("VmHWM")
		r.logWarn, r.logErr, r.firstLogErr = srv.logLevels(logOff)
	}
	if sc.verify != nil && ctx.Err() == nil {
		kept := res.kept
		rand.Shuffle(len(kept), func(i, j int) { kept[i], kept[j] = kept[j], kept[i] })
		kept = kept[:min(200, len(kept))]
		r.verify = sc.verify(ctx, t, workers[0], kept)
	}
	return r
}

// fetchProfile asks the server's debug listener for a CPU profile covering d and writes it to path.
func fetchProfile(ctx context.Context, debugBase string, d time.Duration, path string) error {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", debugBase, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("debug listener answered %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
