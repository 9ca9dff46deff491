package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Target is one path to the database a workload runs against.
type Target struct {
	Name string // direct, via, pgbouncer, pgpool...
	URL  string
}

// ThroughputConfig says what RunThroughput runs.
type ThroughputConfig struct {
	// Targets run one after another, each for Duration. The one named Direct, if any, is
	// what the others are compared with.
	Targets []Target
	// Clients is how many connections run the workload at once; zero means 16.
	Clients int
	// Duration is how long each target runs; zero means 10 s.
	Duration time.Duration
	// ReadRatio is the share of operations that are point reads, in [0, 1]; the rest update
	// one row. Use 1 for reads only.
	ReadRatio float64
	// HotSet is how many rows the operations pick from, uniformly; zero means 1000.
	HotSet int
	// Setup is where the table is created when missing; empty means the first target.
	Setup string
	// PIDs names the process behind a target (by target name) whose cost is measured; a
	// target other than Direct that is not named here is looked up by the loopback port its
	// URL names (/proc/net/tcp). Targets whose process is unknown, or is this process, report
	// no cost.
	PIDs map[string]int
	// IdleClients is how many extra sessions are opened and left idle, after the run, to
	// measure the proxy's resident memory per idle client; zero skips it.
	IdleClients int
	// SyscallDuration is how long a second, untimed run of the workload lasts with
	// `strace -c -f` attached to the proxy to count its system calls per operation (strace
	// slows the proxy down, so it never runs during the timed run); zero skips it, and so
	// does a machine without strace.
	SyscallDuration time.Duration
	// Progress, if not nil, is called about ten times a second with the elapsed and total
	// time of the whole run, from the goroutine that called RunThroughput.
	Progress func(done, total int)
}

// ThroughputResult is one target's run.
type ThroughputResult struct {
	Target    string  `json:"target"`
	Protocol  string  `json:"protocol"`
	Clients   int     `json:"clients"`
	DurationS float64 `json:"duration_s"`
	ReadRatio float64 `json:"read_ratio"`
	HotSet    int     `json:"hot_set"`
	Ops       int64   `json:"ops"`
	Errors    int64   `json:"errors"`
	OpsPerSec float64 `json:"ops_per_sec"`
	P50Ms     float64 `json:"p50_ms"`
	P95Ms     float64 `json:"p95_ms"`
	P99Ms     float64 `json:"p99_ms"`
	// VsDirect is this target's ops/s over the direct target's; 0 without a direct target.
	VsDirect float64 `json:"vs_direct"`
	// The proxy's costs, null when not measured (Notes says why): user + system CPU time
	// of its process tree per operation over the timed run, in microseconds; its system
	// calls per operation in the strace run, and the commonest of them; the growth of its
	// resident memory (VmRSS) per idle client, in KiB.
	CPUUsPerOp       *float64      `json:"cpu_us_per_op"`
	SyscallsPerOp    *float64      `json:"syscalls_per_op"`
	TopSyscalls      []SyscallRate `json:"top_syscalls,omitempty"`
	IdleClients      int           `json:"idle_clients,omitempty"`
	IdleKiBPerClient *float64      `json:"idle_kib_per_client"`
	Notes            []string      `json:"notes,omitempty"`
}

// ThroughputReport is the JSON document of `slipstream bench throughput --json`.
type ThroughputReport struct {
	Results []ThroughputResult `json:"results"`
}

// RunThroughput runs the workload against each target in turn: Clients persistent
// connections, each running operations back to back for Duration, a point read with
// probability ReadRatio and otherwise an update of one row, rows picked uniformly among the
// first HotSet. A connection that fails is counted as an error and reopened.
func RunThroughput(ctx context.Context, cfg ThroughputConfig) ([]ThroughputResult, error) {
	if len(cfg.Targets) == 0 {
		return nil, errors.New("no target")
	}
	if cfg.Clients == 0 {
		cfg.Clients = 16
	}
	if cfg.Duration == 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.HotSet == 0 {
		cfg.HotSet = benchRows
	}
	if cfg.Clients < 0 || cfg.Duration < 0 || cfg.HotSet < 0 || cfg.ReadRatio < 0 || cfg.ReadRatio > 1 {
		return nil, fmt.Errorf("clients %d, duration %v, hot set %d, read ratio %v: out of range",
			cfg.Clients, cfg.Duration, cfg.HotSet, cfg.ReadRatio)
	}
	conns := make([]connector, len(cfg.Targets))
	for i, t := range cfg.Targets {
		c, err := newConnector(t.URL)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.Name, err)
		}
		if i > 0 && c.protocol() != conns[0].protocol() {
			return nil, fmt.Errorf("%s speaks %s and %s %s: compare one database", cfg.Targets[0].Name, conns[0].protocol(), t.Name, c.protocol())
		}
		conns[i] = c
	}
	setup := cfg.Setup
	if setup == "" {
		setup = cfg.Targets[0].URL
	}
	if err := prepareRows(ctx, setup, cfg.HotSet); err != nil {
		return nil, err
	}
	var results []ThroughputResult
	for i, t := range cfg.Targets {
		progress := func(elapsed time.Duration) {
			if cfg.Progress != nil {
				total := time.Duration(len(cfg.Targets)) * cfg.Duration
				cfg.Progress(int((time.Duration(i)*cfg.Duration+elapsed)/time.Millisecond), int(total/time.Millisecond))
			}
		}
		pid, note := proxyPID(t, cfg.PIDs)
		r, err := runLoad(ctx, conns[i], cfg, progress, pid)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.Name, err)
		}
		r.Target = t.Name
		if note != "" {
			r.Notes = append(r.Notes, note)
		}
		if pid > 0 {
			measureSyscalls(ctx, conns[i], cfg, pid, &r)
			measureIdle(ctx, conns[i], t.Name, cfg.IdleClients, pid, &r)
		}
		results = append(results, r)
	}
	var direct float64
	for _, r := range results {
		if r.Target == Direct {
			direct = r.OpsPerSec
		}
	}
	if direct > 0 {
		for i := range results {
			results[i].VsDirect = round2(results[i].OpsPerSec / direct)
		}
	}
	return results, nil
}

// runLoad runs the workload against one target.
// With pid > 0 it also measures that process's CPU time per operation.
func runLoad(ctx context.Context, c connector, cfg ThroughputConfig, progress func(time.Duration), pid int) (ThroughputResult, error) {
	// Connect everyone first, so connection setup is not in the figures.
	sessions := make([]session, cfg.Clients)
	defer func() {
		for _, s := range sessions {
			if s != nil {
				s.close()
			}
		}
	}()
	for i := range sessions {
		s, err := c.connect(ctx)
		if err != nil {
			return ThroughputResult{}, err
		}
		sessions[i] = s
	}
	var ops, errs atomic.Int64
	lat := make([][]time.Duration, cfg.Clients)
	var cpu0 time.Duration
	cpuErr := errors.New("no process")
	if pid > 0 {
		cpu0, cpuErr = cpuTime(pid)
	}
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	lctx, cancel := context.WithDeadline(ctx, deadline.Add(5*time.Second))
	defer cancel()
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano())))
			for time.Now().Before(deadline) && lctx.Err() == nil {
				id := 1 + rng.IntN(cfg.HotSet)
				q := pointRead(id)
				if rng.Float64() >= cfg.ReadRatio {
					q = fmt.Sprintf("UPDATE %s SET v = 'updated %d' WHERE id = %d", benchTable, rng.IntN(1000), id)
				}
				t0 := time.Now()
				if err := sessions[i].query(lctx, q); err != nil {
					errs.Add(1)
					sessions[i].close()
					sessions[i] = nil
					s, err := c.connect(lctx)
					if err != nil {
						return // the error is counted; this client is done
					}
					sessions[i] = s
					continue
				}
				lat[i] = append(lat[i], time.Since(t0))
				ops.Add(1)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case <-tick.C:
			progress(min(time.Since(start), cfg.Duration))
		}
	}
	elapsed := time.Since(start)
	var cpuPerOp *float64
	var notes []string
	if cpuErr == nil {
		cpu1, err := cpuTime(pid)
		switch {
		case err != nil:
			notes = append(notes, err.Error())
		case ops.Load() > 0:
			v := round2(float64((cpu1 - cpu0).Microseconds()) / float64(ops.Load()))
			cpuPerOp = &v
		}
	} else if pid > 0 {
		notes = append(notes, cpuErr.Error())
	}
	if err := ctx.Err(); err != nil {
		return ThroughputResult{}, err
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	s := summarize(c.protocol(), "", "", all)
	return ThroughputResult{
		Protocol: c.protocol(), Clients: cfg.Clients, DurationS: round2(elapsed.Seconds()),
		ReadRatio: cfg.ReadRatio, HotSet: cfg.HotSet, Ops: ops.Load(), Errors: errs.Load(),
		OpsPerSec: round2(float64(ops.Load()) / elapsed.Seconds()),
		P50Ms:     s.P50Ms, P95Ms: s.P95Ms, P99Ms: s.P99Ms,
		CPUUsPerOp: cpuPerOp, Notes: notes,
	}, nil
}

// proxyPID returns the process whose cost target's figures show, or 0 and why not.
func proxyPID(t Target, pids map[string]int) (int, string) {
	if pid, ok := pids[t.Name]; ok {
		return pid, ""
	}
	if t.Name == Direct {
		return 0, ""
	}
	u, err := url.Parse(t.URL)
	if err != nil {
		return 0, "no process: the URL does not parse"
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return 0, "no cost figures: the proxy is not on this machine"
	}
	pid, err := listenerPID(u.Host)
	if err != nil {
		return 0, "no cost figures: " + err.Error()
	}
	if pid == os.Getpid() {
		return 0, "no cost figures: the proxy runs inside this process, with the load generator"
	}
	return pid, ""
}

// measureSyscalls runs the workload again for cfg.SyscallDuration with strace attached to
// pid, and sets r's system calls per operation.
func measureSyscalls(ctx context.Context, c connector, cfg ThroughputConfig, pid int, r *ThroughputResult) {
	if cfg.SyscallDuration <= 0 {
		return
	}
	stop, err := straceAttach(ctx, pid)
	if err != nil {
		r.Notes = append(r.Notes, "syscalls n/a: "+err.Error())
		return
	}
	sc := cfg
	sc.Duration = cfg.SyscallDuration
	run, err := runLoad(ctx, c, sc, func(time.Duration) {}, 0)
	counts, serr := stop()
	switch {
	case err != nil:
		r.Notes = append(r.Notes, "syscalls n/a: the run under strace: "+err.Error())
	case serr != nil:
		r.Notes = append(r.Notes, "syscalls n/a: "+serr.Error())
	case run.Ops > 0:
		v := round2(float64(counts.Total) / float64(run.Ops))
		r.SyscallsPerOp = &v
		r.TopSyscalls = counts.perOp(run.Ops, 5)
	}
}

// measureIdle opens n sessions through c, leaves them idle, and sets r's growth of pid's
// resident memory per session.
func measureIdle(ctx context.Context, c connector, name string, n, pid int, r *ThroughputResult) {
	if n <= 0 {
		return
	}
	if name == Pgpool {
		r.Notes = append(r.Notes, "idle memory n/a: pgpool-II serves num_init_children (32) clients at once")
		return
	}
	before, err := rssKiB(pid)
	if err != nil {
		r.Notes = append(r.Notes, "idle memory n/a: "+err.Error())
		return
	}
	sessions := make([]session, n)
	defer func() {
		for _, s := range sessions {
			if s != nil {
				s.close()
			}
		}
	}()
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for failed.Load() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				s, err := c.connect(cctx)
				cancel()
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				sessions[i] = s
			}
		}()
	}
	wg.Wait()
	if e := failed.Load(); e != nil {
		r.Notes = append(r.Notes, fmt.Sprintf("idle memory n/a: opening %d idle sessions: %v", n, *e))
		return
	}
	after, err := rssKiB(pid)
	if err != nil {
		r.Notes = append(r.Notes, "idle memory n/a: "+err.Error())
		return
	}
	v := round2(float64(after-before) / float64(n))
	r.IdleClients, r.IdleKiBPerClient = n, &v
}
