package app

import (
	"context"
	"encoding/json"
	"os"
	"runtime"
	"time"

	"github.com/sipedge/sipedge/daemon/config"
	"github.com/sipedge/sipedge/daemon/ctl"
	"github.com/sipedge/sipedge/daemon/liveness"
	"github.com/sipedge/sipedge/daemon/logging"
	"github.com/sipedge/sipedge/daemon/store"
	"github.com/sipedge/sipedge/daemon/version"
)

// Status is the node's state as `ctl status` and the web page show it.
type Status struct {
	Node       string            `json:"node"`
	Profile    string            `json:"profile"`
	Platform   string            `json:"platform"`
	Version    string            `json:"version"`
	PID        int               `json:"pid"`
	Started    time.Time         `json:"started"`
	Uptime     string            `json:"uptime"`
	Config     string            `json:"config"`
	LogLevel   string            `json:"log_level"`
	Store      StoreStatus       `json:"store"`
	Subsystems []liveness.Status `json:"subsystems"`
	// Alarms: conditions the operator must fix while the box works on.
	Alarms   []Alarm        `json:"alarms,omitempty"`
	Sections map[string]any `json:"sections,omitempty"`
}

// StoreStatus tells whether the store is writable.
type StoreStatus struct {
	Path    string    `json:"path"`
	OK      bool      `json:"ok"`
	Error   string    `json:"error,omitempty"`
	ErrorAt time.Time `json:"error_at,omitzero"`
	Dropped uint64    `json:"events_dropped"`
	Failed  uint64    `json:"events_failed"`
}

// NodeStatus returns the node's status now.
func (a *App) NodeStatus() Status {
	cfg := a.Config()
	st := Status{
		Node: cfg.Node.Name, Profile: cfg.Node.Profile, Platform: cfg.Node.Platform,
		Version: version.Version, PID: os.Getpid(), Started: a.started,
		Uptime: time.Since(a.started).Round(time.Second).String(), Config: cfg.Source,
		LogLevel:   a.level.Level().String(),
		Subsystems: a.live.Snapshot(time.Now()),
		Store:      StoreStatus{Path: a.store.Path(), OK: true, Dropped: a.events.Dropped(), Failed: a.events.Failed()},
		Sections:   map[string]any{},
		Alarms:     a.Alarms(),
	}
	if err, at := a.store.Health(); err != nil {
		st.Store.OK, st.Store.Error, st.Store.ErrorAt = false, err.Error(), at
	}
	a.statusMu.Lock()
	fns := make(map[string]func() any, len(a.status))
	for k, v := range a.status {
		fns[k] = v
	}
	a.statusMu.Unlock()
	for k, fn := range fns {
		st.Sections[k] = fn()
	}
	return st
}

// registerCore adds the ctl methods every node has.
func (a *App) registerCore() {
	a.ctl.Handle("status", "the node's state", func(context.Context, json.RawMessage) (any, error) {
		return a.NodeStatus(), nil
	})
	a.ctl.Handle("events", "recent events: {limit, after}", func(ctx context.Context, p json.RawMessage) (any, error) {
		q := struct {
			Limit int    `json:"limit"`
			After uint64 `json:"after"`
		}{Limit: 50}
		if err := ctl.DecodeParams(p, &q); err != nil {
			return nil, err
		}
		if q.Limit <= 0 || q.Limit > 10000 {
			return nil, ctl.Errorf(ctl.CodeBadRequest, "limit %d outside 1..10000", q.Limit)
		}
		// List what has been logged: wait (briefly) for the recorder to
		// write events still queued, then read what the store holds.
		fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := a.events.Flush(fctx); err != nil {
			a.log.Warn("events listed before all were stored", "err", err)
		}
		cancel()
		ev, err := a.store.Events(q.Limit, q.After)
		if err != nil {
			return nil, err
		}
		if ev == nil {
			ev = []store.Event{}
		}
		return ev, nil
	})
	a.ctl.Handle("config.show", "the effective configuration (file plus defaults) as YAML", func(context.Context, json.RawMessage) (any, error) {
		b, err := config.Marshal(a.Config())
		if err != nil {
			return nil, err
		}
		return map[string]string{"source": a.Config().Source, "yaml": string(b)}, nil
	})
	a.ctl.Handle("config.reload", "re-read the configuration file (as SIGHUP)", func(context.Context, json.RawMessage) (any, error) {
		if err := a.reload(); err != nil {
			return nil, ctl.Errorf(ctl.CodeConflict, "reload refused, old configuration kept:\n%v", err)
		}
		return map[string]string{"source": a.Config().Source}, nil
	})
	a.ctl.Handle("runtime", "Go runtime figures: goroutines, heap, GC", func(context.Context, json.RawMessage) (any, error) {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return map[string]any{
			"goroutines": runtime.NumGoroutine(), "heap_alloc_bytes": m.HeapAlloc, "heap_sys_bytes": m.HeapSys,
			"sys_bytes": m.Sys, "total_alloc_bytes": m.TotalAlloc, "mallocs": m.Mallocs, "num_gc": m.NumGC,
			"gc_pause_total_ns": m.PauseTotalNs, "gomaxprocs": runtime.GOMAXPROCS(0),
		}, nil
	})
	a.ctl.Handle("debug.profile", "write a pprof profile: {kind: cpu|heap|allocs|goroutine, seconds, path}", func(ctx context.Context, p json.RawMessage) (any, error) {
		q := struct {
			Kind    string `json:"kind"`
			Seconds int    `json:"seconds"`
			Path    string `json:"path"`
		}{Kind: "allocs", Seconds: 10}
		if err := ctl.DecodeParams(p, &q); err != nil {
			return nil, err
		}
		if q.Path == "" {
			return nil, ctl.Errorf(ctl.CodeBadRequest, "path is required")
		}
		if err := writeProfile(ctx, q.Kind, time.Duration(q.Seconds)*time.Second, q.Path); err != nil {
			return nil, ctl.Errorf(ctl.CodeBadRequest, "%v", err)
		}
		return map[string]string{"path": q.Path}, nil
	})
	a.ctl.Handle("log.level", "set the log level: {level}", func(_ context.Context, p json.RawMessage) (any, error) {
		var q struct {
			Level string `json:"level"`
		}
		if err := ctl.DecodeParams(p, &q); err != nil {
			return nil, err
		}
		lvl, err := logging.ParseLevel(q.Level)
		if err != nil {
			return nil, ctl.Errorf(ctl.CodeBadRequest, "%v", err)
		}
		a.level.Set(lvl)
		a.log.Info("log level changed", "level", lvl.String())
		return map[string]string{"level": lvl.String()}, nil
	})
}
