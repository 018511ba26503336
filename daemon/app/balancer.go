package app

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipedge/sipedge/daemon/balancer"
	"github.com/sipedge/sipedge/daemon/config"
	"github.com/sipedge/sipedge/daemon/ctl"
	"github.com/sipedge/sipedge/daemon/resolve"
	"github.com/sipedge/sipedge/daemon/store"
)

// coreOverlayKey is where runtime Core changes live in the store.
const coreOverlayKey = "balancer.cores"

// CoreOverlay is the runtime changes to the sip.cores of the file: Cores
// added and removed with `ctl cores`, and their administrative states.
// It is applied over the file's list at every start.
type CoreOverlay struct {
	Added   []balancer.CoreConfig `json:"added,omitempty"`
	Removed []string              `json:"removed,omitempty"`
	Admin   map[string]string     `json:"admin,omitempty"` // name -> disabled | draining
}

// Apply returns the Core list of the file with the overlay applied.
func (o CoreOverlay) Apply(file []balancer.CoreConfig) []balancer.CoreConfig {
	var out []balancer.CoreConfig
	for _, c := range file {
		if !slices.Contains(o.Removed, c.Name) && !slices.ContainsFunc(o.Added, func(a balancer.CoreConfig) bool { return a.Name == c.Name }) {
			out = append(out, c)
		}
	}
	return append(out, o.Added...)
}

// CoresStatus is the answer of `ctl cores`.
type CoresStatus struct {
	Algorithm string                `json:"algorithm"`
	Listen    []string              `json:"listen"`
	CoreSide  []string              `json:"core_side,omitempty"` // the Core-facing sockets
	Dialogs   int                   `json:"dialogs"`
	Cores     []balancer.CoreStatus `json:"cores"`
	// Groups are the Cores given by DNS name (each target is a Core above).
	Groups []balancer.CoreGroupStatus `json:"groups,omitempty"`
	Stats  map[string]uint64          `json:"stats"`
}

// BalancerOptions converts the sip: section (and the security message
// size limits and trusted networks) to the balancer's options, without
// logger and events.
func BalancerOptions(cfg *config.Config) balancer.Options {
	s := cfg.SIP
	opt := balancer.Options{
		Listen:    s.Listen,
		CorePort:  s.CorePort,
		Algorithm: s.Algorithm,
		Probe: balancer.ProbeOptions{Interval: s.Probe.Interval.D(), Timeout: s.Probe.Timeout.D(),
			DownAfter: s.Probe.DownAfter, UpAfter: s.Probe.UpAfter, Codes: s.Probe.Codes},
		Retry:           balancer.RetryOptions{On: s.Retry.On, AttemptTimeout: s.Retry.AttemptTimeout.D(), MaxTries: s.Retry.MaxTries},
		DialogTimeout:   s.DialogTTL.D(),
		UDPReadBuffer:   s.UDPBufferBytes,
		UDPWriteBuffer:  s.UDPBufferBytes,
		ShedDelay:       s.Overload.QueueDelay.D(),
		QueueLength:     s.Overload.QueueLength,
		RetryAfter:      s.Overload.RetryAfter,
		MaxMessageBytes: cfg.Security.Limits.MessageBytes,
		MaxHeaders:      cfg.Security.Limits.Headers,
		MaxURIBytes:     cfg.Security.Limits.URIBytes,
		FullPath:        s.RawPaths != nil && !*s.RawPaths,

		TCPIdleTimeout:    s.TCP.IdleTimeout.D(),
		TCPMessageTimeout: s.TCP.MessageTimeout.D(),
		TCPMaxConnections: s.TCP.MaxConnections,
		TCPMaxPerSource:   s.TCP.MaxPerSource,
		TCPExempt:         tcpExempt(cfg),

		Relay:             cfg.Security.Relay,
		MaxDialogs:        s.Caps.Dialogs,
		MaxTransactions:   s.Caps.Transactions,
		MaxBranches:       s.Caps.Branches,
		MaxSessionExpires: s.Caps.SessionExpires.D(),
	}
	if h := healthListener(cfg); h != "" {
		opt.Listen = append(slices.Clip(s.Listen), h)
	}
	for _, c := range s.Cores {
		opt.Cores = append(opt.Cores, balancer.CoreConfig{Name: c.Name, Address: c.Address, Weight: c.Weight, MaxCalls: c.MaxCalls, TLSName: c.TLSName})
	}
	opt.DNS = coreResolver(cfg)
	return opt
}

// coreResolver is the resolver of the Cores given by DNS name: the
// servers of network.dns, else those of /etc/resolv.conf. Nil when none
// is configured: the balancer then refuses a Core given by name, saying
// why.
func coreResolver(cfg *config.Config) *resolve.Resolver {
	r, err := resolve.New(resolve.Options{Servers: cfg.Network.DNSServers()})
	if err != nil {
		return nil
	}
	return r
}

// tcpExempt is what the edge accepts unchecked over TCP, exempt from the
// balancer's TCP caps too: the box itself (127.0.0.1, ::1) and the
// trusted networks (the Cores the balancer knows itself).
func tcpExempt(cfg *config.Config) []netip.Prefix {
	out := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}
	for _, t := range cfg.Security.Trusted {
		if !t.IsTLSName() && (t.Transport == "" || t.Transport == "tcp" || t.Transport == "tls") {
			out = append(out, t.Prefix)
		}
	}
	return out
}

// setupBalancer starts the SIP balancer when the config has a sip:
// section, applies the runtime Core changes kept in the store, and
// registers `ctl cores` and its add/remove/drain/enable/disable.
func (a *App) setupBalancer(ctx context.Context) error {
	cfg := a.Config()
	if cfg.SIP == nil {
		return nil
	}
	tuneGC(a)
	for _, w := range cfg.Unsafe() {
		a.log.Warn("UNSAFE CONFIGURATION: " + w)
	}
	opt := BalancerOptions(cfg)
	opt.Logger = a.log.With("subsystem", "balancer")
	sipTLS, err := newSIPTLS(cfg, opt.Logger)
	if err != nil {
		return err
	}
	opt.TLS = sipTLS.options(cfg)
	opt.Events = balancerEvents{a}
	if err := a.setupEdge(&opt); err != nil {
		return err
	}

	var mu sync.Mutex // guards overlay and its store copy
	var overlay CoreOverlay
	if _, err := a.store.Get(store.Runtime, coreOverlayKey, &overlay); err != nil {
		return err
	}
	opt.Cores = overlay.Apply(opt.Cores)
	b, err := balancer.New(opt)
	if err != nil {
		return err
	}
	if err := a.setupReplica(ctx, b); err != nil {
		return err
	}
	for name, st := range overlay.Admin {
		var err error
		switch st {
		case string(balancer.StateDisabled):
			err = b.DisableCore(name)
		case string(balancer.StateDraining):
			err = b.DrainCore(name)
		}
		if err != nil {
			a.log.Warn("stored core state not applied", "core", name, "state", st, "err", err)
		}
	}
	if err := b.Start(ctx); err != nil {
		return err
	}
	coll := balancer.NewCollector(b)
	if err := prometheus.DefaultRegisterer.Register(coll); err != nil {
		a.log.Warn("balancer metrics not registered", "err", err)
	}
	tlsColl := sipTLS.collector()
	if tlsColl != nil {
		if err := prometheus.DefaultRegisterer.Register(tlsColl); err != nil {
			a.log.Warn("tls metrics not registered", "err", err)
		}
	}
	a.onStop(func() {
		prometheus.DefaultRegisterer.Unregister(coll)
		if tlsColl != nil {
			prometheus.DefaultRegisterer.Unregister(tlsColl)
		}
	})
	beat := a.live.Register("balancer", 10*time.Second)
	a.add("balancer", func(ctx context.Context) error {
		defer b.Close()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			if err := b.Healthy(); err == nil {
				beat.Beat()
			} else {
				a.log.Warn("balancer unhealthy", "err", err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
	status := func() any {
		st := CoresStatus{Algorithm: opt.Algorithm, Listen: b.Addrs(), CoreSide: b.CoreAddrs(), Dialogs: b.Dialogs(), Cores: b.Cores(), Groups: b.CoreGroups(), Stats: b.Stats().Snapshot()}
		srv, cli := b.Transactions()
		st.Stats["server_transactions"], st.Stats["client_transactions"] = uint64(srv), uint64(cli)
		st.Stats["goroutines"] = uint64(runtime.NumGoroutine())
		return st
	}
	a.addStatus("sip", status)
	a.onReload("balancer", func(c *config.Config) error {
		if err := sipTLS.reload(c); err != nil {
			a.log.Error("tls reload", "err", err)
			return err
		}
		b.SetTCPExempt(tcpExempt(c)) // security.trusted reloads, as in the edge
		if err := b.SetRelay(c.Security.Relay); err != nil {
			return err
		}
		for _, w := range c.Unsafe() {
			a.log.Warn("UNSAFE CONFIGURATION: " + w)
		}
		if !reflect.DeepEqual(c.SIP, cfg.SIP) {
			return errors.New("sip: changes take effect at the next restart (use `sipedge ctl cores` for Cores)")
		}
		return nil
	})

	// change applies fn to the balancer and, when it succeeds, records
	// the change in the overlay and the store.
	change := func(fn func() error, rec func(o *CoreOverlay)) (any, error) {
		mu.Lock()
		defer mu.Unlock()
		if err := fn(); err != nil {
			code := ctl.CodeConflict
			if strings.Contains(err.Error(), "no core") {
				code = ctl.CodeNotFound
			}
			return nil, ctl.Errorf(code, "%v", err)
		}
		rec(&overlay)
		if err := a.store.Put(store.Runtime, coreOverlayKey, overlay); err != nil {
			return nil, ctl.Errorf(ctl.CodeConflict, "applied but not saved (lost at restart): %v", err)
		}
		return status(), nil
	}
	name := func(p json.RawMessage) (string, error) {
		var q struct {
			Name string `json:"name"`
		}
		if err := ctl.DecodeParams(p, &q); err != nil {
			return "", err
		}
		if q.Name == "" {
			return "", ctl.Errorf(ctl.CodeBadRequest, "no core name given")
		}
		return q.Name, nil
	}
	setAdmin := func(state string, fn func(string) error) ctl.HandlerFunc {
		return func(_ context.Context, p json.RawMessage) (any, error) {
			n, err := name(p)
			if err != nil {
				return nil, err
			}
			return change(func() error { return fn(n) }, func(o *CoreOverlay) {
				if o.Admin == nil {
					o.Admin = map[string]string{}
				}
				if state == "" {
					delete(o.Admin, n)
				} else {
					o.Admin[n] = state
				}
			})
		}
	}
	a.ctl.Handle("cores", "the Core pool: state, calls, latency per Core", func(context.Context, json.RawMessage) (any, error) {
		return status(), nil
	})
	a.ctl.Handle("cores.add", "add a Core: {name, address, weight, max_calls, tls_name}", func(_ context.Context, p json.RawMessage) (any, error) {
		var c balancer.CoreConfig
		if err := ctl.DecodeParams(p, &c); err != nil {
			return nil, err
		}
		if c.Weight == 0 {
			c.Weight = 1
		}
		return change(func() error { return b.AddCore(c) }, func(o *CoreOverlay) {
			o.Removed = slices.DeleteFunc(o.Removed, func(s string) bool { return s == c.Name })
			o.Added = slices.DeleteFunc(o.Added, func(x balancer.CoreConfig) bool { return x.Name == c.Name })
			o.Added = append(o.Added, c)
		})
	})
	a.ctl.Handle("cores.remove", "remove a Core (its calls in progress finish): {name}", func(_ context.Context, p json.RawMessage) (any, error) {
		n, err := name(p)
		if err != nil {
			return nil, err
		}
		return change(func() error { return b.RemoveCore(n) }, func(o *CoreOverlay) {
			added := len(o.Added)
			o.Added = slices.DeleteFunc(o.Added, func(x balancer.CoreConfig) bool { return x.Name == n })
			if len(o.Added) == added || coreInFile(cfg, n) {
				o.Removed = append(o.Removed, n)
			}
			delete(o.Admin, n)
		})
	})
	a.ctl.Handle("cores.drain", "no new calls to a Core; its calls finish: {name}", setAdmin(string(balancer.StateDraining), b.DrainCore))
	a.ctl.Handle("cores.disable", "no new calls to a Core (administratively down): {name}", setAdmin(string(balancer.StateDisabled), b.DisableCore))
	a.ctl.Handle("cores.enable", "return a drained or disabled Core to service: {name}", setAdmin("", b.EnableCore))
	return nil
}

func coreInFile(cfg *config.Config, name string) bool {
	for _, c := range cfg.SIP.Cores {
		if c.Name == name {
			return true
		}
	}
	return false
}

type balancerEvents struct{ a *App }

func (e balancerEvents) Event(kind, core, reason string) {
	// core-down -> core.down, like the other subsystems' event kinds.
	e.a.events.Event(strings.Replace(kind, "-", ".", 1), core, reason)
}

// Garbage collector defaults for a box that runs the balancer. The
// balancer's live heap is small (tens of MB at thousands of calls per
// second) but its allocation rate is high, so Go's default GOGC=100 spends
// much of the CPU collecting: GOGC=400 collects a quarter as often (the
// profile put GC at about a fifth of the CPU). The soft memory limit keeps
// the heap, which may then grow to 5x the live data, inside the box's
// budget: near the limit the collector runs more often instead.
// GOGC and GOMEMLIMIT in the environment take precedence.
const (
	balancerGCPercent   = 400
	balancerMemoryLimit = 256 << 20
)

func tuneGC(a *App) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(balancerGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(balancerMemoryLimit)
	}
	a.log.Debug("garbage collector", "gogc", os.Getenv("GOGC"), "gomemlimit", os.Getenv("GOMEMLIMIT"))
}
