// Package app is the sipedge daemon's lifecycle: it loads the
// configuration, opens the store, starts every subsystem in one place,
// serves the control socket, reloads on SIGHUP and stops cleanly within a
// bound on SIGTERM or SIGINT.
//
// Each subsystem has one setup function in its own file (network.go,
// watchdog.go, balancer.go, failover.go, web.go): it reads the config,
// builds the subsystem, registers its ctl methods, status section and
// reload hook, and adds its run loop with a.add.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipedge/sipedge/daemon/config"
	"github.com/sipedge/sipedge/daemon/ctl"
	"github.com/sipedge/sipedge/daemon/history"
	"github.com/sipedge/sipedge/daemon/liveness"
	"github.com/sipedge/sipedge/daemon/logging"
	"github.com/sipedge/sipedge/daemon/store"
	"github.com/sipedge/sipedge/daemon/update"
	"github.com/sipedge/sipedge/daemon/version"
)

// ShutdownTimeout bounds a clean stop.
const ShutdownTimeout = 10 * time.Second

// Options start the daemon.
type Options struct {
	ConfigPath string    // empty: the embedded default
	LogOutput  io.Writer // default os.Stderr
	// Ready, if set, is closed once every subsystem has started.
	Ready chan<- struct{}
}

// App is the running daemon.
type App struct {
	opts     Options
	cfg      atomic.Pointer[config.Config]
	level    *slog.LevelVar
	log      *slog.Logger
	store    *store.Store
	events   *store.Recorder
	ctl      *ctl.Server
	live     *liveness.Registry
	started  time.Time
	subs     []subsystem
	stops    []func() // run after every subsystem has stopped, in reverse
	reloads  []reloadHook
	statusMu sync.Mutex
	status   map[string]func() any
	reg      *prometheus.Registry // what /metrics serves, beside the Go runtime's
	vipHooks []func(group string, master bool)
	alarms   alarms           // standing alarms (alarms.go)
	hist     *history.History // the charts' last hour (history.go)
}

type subsystem struct {
	name string
	run  func(ctx context.Context) error
}

type reloadHook struct {
	name string
	fn   func(*config.Config) error
}

// Load returns the configuration at path, or the embedded default.
func Load(path string) (*config.Config, error) {
	if path == "" {
		return config.Default(), nil
	}
	return config.Load(path)
}

// Run starts the daemon and blocks until ctx ends or a signal stops it.
func Run(ctx context.Context, opts Options) error {
	if opts.LogOutput == nil {
		opts.LogOutput = os.Stderr
	}
	cfg, err := Load(opts.ConfigPath)
	if err != nil {
		return err
	}
	a := &App{opts: opts, level: new(slog.LevelVar), live: liveness.New(), started: time.Now(), status: map[string]func() any{}, reg: prometheus.NewRegistry()}
	lvl, _ := logging.ParseLevel(cfg.Log.Level)
	a.level.Set(lvl)
	a.log = logging.New(opts.LogOutput, cfg.Log.Format, a.level)
	a.cfg.Store(cfg)
	a.log.Info("sipedge starting", "version", version.Version, "config", cfg.Source, "node", cfg.Node.Name, "profile", cfg.Node.Profile, "pid", os.Getpid())

	// A trial boot keeps the store's schema for the firmware it may roll
	// back to (update.go commits it).
	a.store, err = store.Open(cfg.Node.DataDir, store.Options{Logger: a.log, DeferSchema: update.ReadBoot().Trial})
	if err != nil {
		return err
	}
	defer a.store.Close()
	a.events = store.NewRecorder(a.store, a.log)
	a.ctl = ctl.NewServer(a.log)
	a.registerCore()

	ln, err := ctl.Listen(cfg.SocketPath())
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()

	for _, setup := range []struct {
		name string
		fn   func(context.Context) error
	}{
		{"update", a.setupUpdate}, // first: a trial's test flags act at start
		{"network", a.setupNetwork},
		{"time", a.setupTime},
		{"watchdog", a.setupWatchdog},
		{"history", a.setupHistory},
		{"balancer", a.setupBalancer},
		{"failover", a.setupFailover},
		{"web", a.setupWeb},
		{"console", a.setupConsole},
	} {
		if err := setup.fn(runCtx); err != nil {
			ln.Close()
			a.runStops()
			return fmt.Errorf("start %s: %w", setup.name, err)
		}
	}

	var wg sync.WaitGroup
	errc := make(chan error, len(a.subs)+2)
	start := func(name string, run func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(runCtx); err != nil && runCtx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	start("events", a.events.Run)
	start("store", a.watchStore)
	start("ctl", func(ctx context.Context) error { return a.ctl.Serve(ctx, ln) })
	for _, s := range a.subs {
		start(s.name, s.run)
	}
	a.events.Event("daemon.start", cfg.Node.Name, fmt.Sprintf("sipedge %s started (profile %s, config %s)", version.Version, cfg.Node.Profile, cfg.Source))
	if opts.Ready != nil {
		close(opts.Ready)
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			a.log.Info("stopping", "reason", context.Cause(ctx))
			break loop
		case <-hup:
			a.reload()
		case err := <-errc:
			a.log.Error("subsystem failed; stopping", "err", err)
			runErr = err
			break loop
		}
	}
	a.events.Event("daemon.stop", cfg.Node.Name, "sipedge stopping")
	cancel()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(ShutdownTimeout):
		a.log.Error("subsystems did not stop in time", "timeout", ShutdownTimeout)
		runErr = errors.Join(runErr, fmt.Errorf("shutdown: subsystems did not stop within %s", ShutdownTimeout))
	}
	a.runStops()
	a.log.Info("stopped")
	return runErr
}

// watchStore reports the store's liveness: a read transaction that
// completes. A full disk is a fault shown in status, not a hang: only a
// store that stops answering stops the beat (and so the watchdog).
func (a *App) watchStore(ctx context.Context) error {
	beat := a.live.Register("store", 5*time.Second)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if _, err := a.store.Get(store.State, "liveness", new(any)); err == nil {
			beat.Beat()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Config is the configuration in force.
func (a *App) Config() *config.Config { return a.cfg.Load() }

// add registers a subsystem's run loop. run must return when ctx ends.
func (a *App) add(name string, run func(ctx context.Context) error) {
	a.subs = append(a.subs, subsystem{name, run})
}

// onStop registers cleanup that runs after every subsystem has stopped.
func (a *App) onStop(fn func()) { a.stops = append(a.stops, fn) }

func (a *App) runStops() {
	for i := len(a.stops) - 1; i >= 0; i-- {
		a.stops[i]()
	}
}

// onReload registers a hook that applies a new configuration. A hook
// that returns an error keeps its part of the old configuration.
func (a *App) onReload(name string, fn func(*config.Config) error) {
	a.reloads = append(a.reloads, reloadHook{name, fn})
}

// onVIP registers fn to be told, synchronously and in order, every time a
// VIP group of this box becomes master or stops being master. It is how
// parts that must follow the VIP (the balancer's hot standby) learn of it
// without importing the failover. fn must not block.
func (a *App) onVIP(fn func(group string, master bool)) { a.vipHooks = append(a.vipHooks, fn) }

// addStatus adds a section to `ctl status` and the web status.
func (a *App) addStatus(name string, fn func() any) {
	a.statusMu.Lock()
	a.status[name] = fn
	a.statusMu.Unlock()
}

// reload re-reads the configuration file; an invalid file keeps the old
// configuration in force and logs why.
func (a *App) reload() error {
	old := a.Config()
	if a.opts.ConfigPath == "" {
		a.log.Info("reload: running on the embedded default; nothing to re-read")
		return nil
	}
	cfg, err := config.Load(a.opts.ConfigPath)
	if err != nil {
		a.log.Error("reload refused: the file is invalid; the old configuration stays in force", "err", err.Error())
		a.events.Event("config.reload_failed", old.Node.Name, "reload refused: "+firstLine(err.Error()))
		return err
	}
	if cfg.Node.DataDir != old.Node.DataDir || cfg.SocketPath() != old.SocketPath() {
		a.log.Warn("reload: node.data_dir and control.socket take effect at the next start")
	}
	if lvl, err := logging.ParseLevel(cfg.Log.Level); err == nil {
		a.level.Set(lvl)
	}
	var errs []error
	for _, h := range a.reloads {
		if err := h.fn(cfg); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", h.name, err))
		}
	}
	a.cfg.Store(cfg)
	if len(errs) > 0 {
		err := errors.Join(errs...)
		a.log.Error("reload: some parts kept their old settings", "err", err)
		a.events.Event("config.reload_partial", cfg.Node.Name, err.Error())
		return err
	}
	a.events.Event("config.reload", cfg.Node.Name, "configuration reloaded from "+cfg.Source)
	return nil
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i] + " (and more)"
		}
	}
	return s
}
