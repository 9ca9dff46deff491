package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/slipstream-proxy/slipstream/config"
	"github.com/slipstream-proxy/slipstream/proxy"
)

// The life of serve, edge and pool, the same for all three (PgBouncer's semantics, and
// better):
//
//	start ── listeners open, configuration loaded: /startup 200, READY=1 ──> serving
//	serving ── SIGHUP (or Lifecycle.Reload): RELOADING=1, apply the file again, READY=1 ──> serving
//	serving ── SIGTERM or SIGINT: STOPPING=1, /readyz 503 ──> draining
//	draining ── shutdown_min_delay later: stop accepting; each session ends at its next
//	            request boundary (57P01 / ER_SERVER_SHUTDOWN) ──> exit 0 when the last one ends
//	draining ── shutdown_timeout, or a second SIGTERM/SIGINT: end every session now ──> exit 0
//	serving ── SIGUSR2: start the binary again, hand it the listeners (handover.go); once it
//	           serves: MAINPID=new, stop accepting, hand idle sessions over at their next
//	           request boundary, drain the others ──> exit 0 as draining does
//
// Without signals in the context (in-process tests), cancelling the context is the immediate
// stop, as before.

// signalsKey is the context key of the process's signals.
type signalsKey struct{}

// WithSignals gives the commands the signals that drive their lifecycle.
func WithSignals(ctx context.Context, sigs <-chan os.Signal) context.Context {
	return context.WithValue(ctx, signalsKey{}, sigs)
}

func signalsOf(ctx context.Context) <-chan os.Signal {
	sigs, _ := ctx.Value(signalsKey{}).(<-chan os.Signal)
	return sigs // nil: none, a select on it never fires
}

// untilStopped returns ctx, canceled at the first SIGTERM or interrupt among the signals main
// catches for every command: a command without a lifecycle of its own (bench, planetscale)
// stops on them too. The cancel func releases the watch.
func untilStopped(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	sigs := signalsOf(ctx)
	if sigs == nil {
		return ctx, cancel
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-sigs:
				if sig != syscall.SIGHUP {
					cancel()
					return
				}
			}
		}
	}()
	return ctx, cancel
}

// ProcessSignals returns the channel of the signals a command handles, and a function that
// stops them.
func ProcessSignals() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGTERM, os.Interrupt, syscall.SIGHUP, syscall.SIGUSR2)
	return ch, func() { signal.Stop(ch) }
}

// reparseKey is the context key of the function that reads the configuration again the way
// the command read it at start (flags, environment, --config file).
type reparseKey struct{}

func withReparse(ctx context.Context, reparse func() (config.Config, error)) context.Context {
	return context.WithValue(ctx, reparseKey{}, reparse)
}

func reparseOf(ctx context.Context) func() (config.Config, error) {
	f, _ := ctx.Value(reparseKey{}).(func() (config.Config, error))
	return f
}

// Lifecycle is one command's life: started, reloading, draining. Its Reload is what SIGHUP
// calls, and what the admin console's RELOAD calls.
type Lifecycle struct {
	log      *slog.Logger
	minDelay time.Duration
	timeout  time.Duration
	notify   *notifier
	started  atomic.Bool
	draining atomic.Bool

	reloadMu sync.Mutex
	// apply applies a configuration read again; nil: the command has nothing it can reload.
	apply func(config.Config) error
	// reparse reads the configuration again; nil: there is no way to (in-process tests).
	reparse func() (config.Config, error)
	// drain stops accepting clients and ends each session at its next request boundary;
	// nil: the command has no client sessions of its own.
	drain func()
	// handOver is drain for an upgrade (SIGUSR2): sessions that can move go to the new
	// process; nil: the command has no client sessions to hand over.
	handOver func(proxy.Handoff)
	// adopt serves a session an old process handed over.
	adopt func(context.Context, net.Conn, proxy.HandedSession) error
	// listeners are the listening sockets a new process takes over, by configured address.
	listeners []handedListener
}

// serveClients lets the lifecycle drain edge's client sessions, hand them over to a new
// process and take them over from an old one; listeners are the sockets a new process takes.
func (lc *Lifecycle) serveClients(edge *proxy.Server, listeners ...handedListener) {
	lc.drain, lc.handOver, lc.adopt = edge.Drain, edge.HandOver, edge.Adopt
	for _, l := range listeners {
		if l.ln != nil {
			lc.listeners = append(lc.listeners, l)
		}
	}
}

// newLifecycle returns the lifecycle of a command run with cfg.
func newLifecycle(ctx context.Context, cfg config.Config, log *slog.Logger) *Lifecycle {
	timeout := cfg.ShutdownTimeout.Duration
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return &Lifecycle{log: log, minDelay: cfg.ShutdownMinDelay.Duration, timeout: timeout,
		notify: newNotifier(), reparse: reparseOf(ctx)}
}

// Reload reads the configuration again, from the same flags, environment and --config file
// the process started with, and applies it without dropping a session: databases added,
// removed (their sessions drained) and changed (pool sizes, caching, credentials, origins), the
// TLS certificate read again. A configuration that does not parse or validate changes
// nothing: the running one stays, and the error says why.
func (lc *Lifecycle) Reload() error {
	lc.reloadMu.Lock()
	defer lc.reloadMu.Unlock()
	lc.notify.send(reloading())
	defer lc.notify.send("READY=1")
	err := lc.reload()
	if err != nil {
		lc.log.Error("reload failed; the running configuration stays", "err", err)
		return err
	}
	lc.log.Info("configuration reloaded")
	return nil
}

func (lc *Lifecycle) reload() error {
	if lc.apply == nil || lc.reparse == nil {
		return errors.New("reload: this process cannot read its configuration again")
	}
	cfg, err := lc.reparse()
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	if err := lc.apply(cfg); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	return nil
}

// ready wraps a server's own readiness: false until the command serves, and from SIGTERM on.
func (lc *Lifecycle) ready(serverReady func() bool) func() bool {
	return func() bool { return lc.started.Load() && !lc.draining.Load() && serverReady() }
}

// handleProbes adds the Kubernetes probes to mux: /startup (listening, configuration
// loaded), /livez (the process answers) and /readyz (taking new clients: 503 while draining).
func (lc *Lifecycle) handleProbes(mux *http.ServeMux, ready func() bool) {
	probe := func(ok func() bool, down string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if !ok() {
				http.Error(w, down, http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ok")
		}
	}
	mux.HandleFunc("/startup", probe(lc.started.Load, "starting"))
	mux.HandleFunc("/livez", probe(func() bool { return true }, ""))
	mux.HandleFunc("/readyz", probe(ready, "not ready: starting or draining"))
}

// run serves HTTP on httpln, runs the background tasks and the client servers until ctx
// ends, one of them fails, or a drain completes (see the diagram above); then it stops them
// all and waits for them. Client servers return once drain has closed their listeners and
// their sessions have ended.
func (lc *Lifecycle) run(ctx context.Context, httpln net.Listener, mux http.Handler, background, clients []func(context.Context) error) error {
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	var wg, clientWG sync.WaitGroup
	errc := make(chan error, 1+len(background)+len(clients))
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := hs.Serve(httpln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	}()
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	start := func(run func(context.Context) error, group *sync.WaitGroup) {
		wg.Add(1)
		group.Add(1)
		go func() {
			defer wg.Done()
			defer group.Done()
			if err := run(sctx); err != nil {
				errc <- err
			}
		}()
	}
	var bgWG sync.WaitGroup
	for _, run := range background {
		start(run, &bgWG)
	}
	for _, run := range clients {
		start(run, &clientWG)
	}
	clientsDone := make(chan struct{})
	go func() {
		clientWG.Wait()
		close(clientsDone)
	}()
	lc.started.Store(true)
	if err := lc.notify.send("READY=1"); err != nil {
		lc.log.Warn("telling systemd the service is ready failed", "err", err)
	}
	if p := fromPredecessor(); p != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.adopt(sctx, lc)
		}()
	}

	sigs := signalsOf(ctx)
	var delay, deadline <-chan time.Time
	var drained <-chan struct{}
	var err error
	upgraded := make(chan upgrade, 1)
	var upgrading bool
	var succ *successor
	defer func() {
		if succ != nil {
			succ.close()
			lc.log.Info("handover: done", "sessions_handed_over", succ.handed.Load())
		}
	}()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err = <-errc:
			break loop
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				lc.Reload()
				continue
			}
			if sig == syscall.SIGUSR2 {
				if lc.handOver == nil || upgrading || lc.draining.Load() {
					lc.log.Warn("SIGUSR2 ignored: no client sessions to hand over, or already upgrading or draining")
					continue
				}
				upgrading = true
				lc.log.Info("handover: starting the new process")
				go func() {
					s, err := startSuccessor(sctx, lc.listeners)
					upgraded <- upgrade{s, err}
				}()
				continue
			}
			if lc.draining.Load() {
				lc.log.Warn("second signal while draining: stopping now", "signal", sig.String())
				break loop
			}
			lc.draining.Store(true)
			lc.notify.send("STOPPING=1")
			lc.log.Info("draining: readiness is now false", "signal", sig.String(),
				"shutdown_min_delay", lc.minDelay, "shutdown_timeout", lc.timeout)
			delay, deadline = time.After(lc.minDelay), time.After(lc.timeout)
		case u := <-upgraded:
			upgrading = false
			if u.err != nil {
				lc.log.Error("handover failed; this process goes on serving", "err", u.err)
				continue
			}
			if lc.draining.Load() { // SIGTERM came meanwhile: no upgrade
				u.s.kill()
				continue
			}
			succ = u.s
			lc.draining.Store(true)
			lc.notify.send(fmt.Sprintf("MAINPID=%d", succ.pid))
			lc.log.Info("handover: the new process serves; idle sessions move to it at their next request boundary, the others drain",
				"pid", succ.pid, "shutdown_timeout", lc.timeout)
			wg.Add(1)
			go func() { // the new process answers HTTP on the same socket
				defer wg.Done()
				hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				hs.Shutdown(hctx)
			}()
			lc.handOver(succ.handoff)
			deadline, drained = time.After(lc.timeout), clientsDone
		case <-delay:
			delay = nil
			if lc.drain == nil || len(clients) == 0 {
				break loop
			}
			lc.drain()
			lc.log.Info("draining: no new clients; sessions end at their next request boundary")
			drained = clientsDone
		case <-drained:
			lc.log.Info("drained: every session has ended")
			break loop
		case <-deadline:
			lc.log.Warn("shutdown_timeout passed: ending the sessions left")
			break loop
		}
	}
	lc.log.Info("slipstream stopping")
	stop()
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	hs.Shutdown(hctx)
	wg.Wait()
	return err
}
