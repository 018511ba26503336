package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipedge/sipedge/daemon/config"
	"github.com/sipedge/sipedge/daemon/ctl"
	"github.com/sipedge/sipedge/daemon/store"
	"github.com/sipedge/sipedge/daemon/version"
	"github.com/sipedge/sipedge/daemon/web"
)

// Runtime keys written by the operator's tools.
const (
	keyWebPassword = "web.password"
	keyManagement  = "network.management"
)

// PreviousConfigFile is the copy of the configuration file as it was
// before the last change the daemon saw (a reload that brought a new
// content, or a restore), kept in node.data_dir for `config.restore`.
const PreviousConfigFile = "config.previous.yaml"

// metrics is the registry the app owns and /metrics serves: subsystems
// register their collectors on it in their setup.
func (a *App) metrics() *prometheus.Registry { return a.reg }

// gatherer is what /metrics serves: the app's registry and the process'
// default one (Go runtime and process collectors, and subsystems that
// register there).
func (a *App) gatherer() prometheus.Gatherer {
	return prometheus.Gatherers{a.metrics(), prometheus.DefaultGatherer}
}

// setupWeb registers the operator's ctl methods (web password, reboot,
// factory reset, configuration restore, management address) and starts
// the web server when web.listen is set.
func (a *App) setupWeb(ctx context.Context) error {
	reg := a.metrics()
	if err := reg.Register(web.BuildInfo(version.Version)); err != nil {
		return fmt.Errorf("web: build info metric: %w", err)
	}
	started := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sipedge_start_time_seconds", Help: "When the daemon started (unix seconds)."})
	started.Set(float64(a.started.UnixNano()) / 1e9)
	reg.MustRegister(started)

	var srv *web.Server
	a.ctl.Handle("web.password", "set the web password: {password}", func(_ context.Context, p json.RawMessage) (any, error) {
		var q struct {
			Password string `json:"password"`
		}
		if err := ctl.DecodeParams(p, &q); err != nil {
			return nil, err
		}
		if err := web.CheckPassword(q.Password); err != nil {
			return nil, ctl.Errorf(ctl.CodeBadRequest, "%v", err)
		}
		h, err := web.NewHash(q.Password, 0)
		if err != nil {
			return nil, err
		}
		if err := a.store.Put(store.Runtime, keyWebPassword, h); err != nil {
			return nil, err
		}
		if srv != nil {
			srv.LogoutAll()
		}
		a.events.Event("web.password", a.Config().Node.Name, "web password set; web sessions logged out")
		return map[string]any{"set": h.Set, "algo": h.Algo}, nil
	})
	a.ctl.Handle("reboot", "reboot the box (appliance image only)", func(context.Context, json.RawMessage) (any, error) {
		if !a.underInit() {
			return nil, ctl.Errorf(ctl.CodeConflict, "reboot is only available in the appliance image (this daemon is not run by sipedge's PID 1); stop a dev run with SIGTERM")
		}
		a.events.Event("box.reboot", a.Config().Node.Name, "reboot requested by the operator")
		// A clean stop first, as for an update: a VIP holder hands its
		// VIPs to the peer (the planned handover) before PID 1 reboots.
		a.rebootSoon()
		return map[string]any{"rebooting": true}, nil
	})
	a.ctl.Handle("factory.reset", "wipe every runtime change (Cores added or drained, web password, management address): {confirm: true}", func(_ context.Context, p json.RawMessage) (any, error) {
		var q struct {
			Confirm bool   `json:"confirm"`
			By      string `json:"by"` // "console": said in the event
		}
		if err := ctl.DecodeParams(p, &q); err != nil {
			return nil, err
		}
		if !q.Confirm {
			return nil, ctl.Errorf(ctl.CodeBadRequest, "factory reset needs {\"confirm\": true}")
		}
		if err := a.store.Reset(store.Runtime); err != nil {
			return nil, fmt.Errorf("factory reset: %w", err)
		}
		if srv != nil {
			srv.LogoutAll()
		}
		by := ""
		if q.By == "console" {
			by = " from the serial console"
		}
		a.events.Event("factory.reset", a.Config().Node.Name, "runtime changes wiped (factory defaults)"+by+"; restart or reboot to run on the configuration file alone")
		return map[string]any{"reset": true, "restart_needed": true}, nil
	})
	if _, ok := a.ctl.Methods()["management.set"]; !ok {
		a.registerManagement()
	}
	a.registerRestore()

	a.ctl.Handle(web.MethodWeb, "the web server: address, scheme, certificate fingerprint (SHA-256), access lists, alarms", func(context.Context, json.RawMessage) (any, error) {
		if srv == nil {
			return web.Info{Scheme: "off"}, nil
		}
		in := srv.Info()
		if in.TLSFingerprint != "" {
			in.TLSSource = "self-signed"
			if a.Config().Web.OperatorCert() {
				in.TLSSource = "operator"
			}
		}
		return in, nil
	})

	cfg := a.Config()
	for _, p := range cfg.Warnings {
		a.log.Warn("config: unsafe setting kept for compatibility", "setting", p.Path, "problem", p.Msg)
		a.events.Event("config.unsafe", p.Path, p.Msg)
	}
	if cfg.Web.Listen == "" {
		return nil
	}
	cert, err := a.webCertificate(cfg)
	if err != nil {
		return err
	}
	s, err := web.New(web.Options{
		Listen:        cfg.Web.Listen,
		OpenTo:        cfg.Web.OpenTo,
		AdminFrom:     cfg.Web.AdminFrom,
		ActFromOpenTo: cfg.Web.OpenToActs(),
		Names:         cfg.Web.Names,
		Certificate:   cert,
		HSTS:          cfg.Web.OperatorCert(),
		Warnings:      webWarnings(cfg),
		Ctl:           a.ctl,
		UploadDir:     cfg.Node.DataDir,
		Password:      a.webPassword,
		Gatherer:      a.gatherer(),
		Registerer:    reg,
		Event:         a.events.Event,
		Logger:        a.log.With("subsystem", "web"),
	})
	if err != nil {
		return err
	}
	ln, err := s.Listen()
	if err != nil {
		return err
	}
	srv = s
	if !cfg.Web.HTTPS() && !cfg.Web.OnLoopback() && cfg.Web.PlainHTTP {
		a.log.Warn("web: plain HTTP off loopback, as web.plain_http allows: the password and session cookie cross the network in clear", "listen", cfg.Web.Listen)
	}
	in := s.Info()
	a.log.Info("web: serving", "url", in.URL, "open_to", fmt.Sprint(cfg.Web.OpenTo), "admin_from", fmt.Sprint(cfg.Web.AdminFrom), "tls_fingerprint", in.TLSFingerprint)
	a.add("web", func(ctx context.Context) error { return s.Serve(ctx, ln) })
	a.onReload("web", func(c *config.Config) error {
		webAccess(s, c)
		if c.Web.Listen != cfg.Web.Listen || c.Web.HTTPS() != cfg.Web.HTTPS() || c.Web.OperatorCert() != cfg.Web.OperatorCert() {
			return errors.New("web.listen and web.tls changes take effect at the next start (access lists and names were applied)")
		}
		if c.Web.OperatorCert() {
			pair, err := web.LoadPair(c.Web.TLS.Cert, c.Web.TLS.Key)
			if err != nil {
				return fmt.Errorf("%w (the certificate in use stays)", err)
			}
			s.SetCertificate(pair)
		}
		return nil
	})
	return nil
}

func (a *App) webPassword() (web.Hash, bool, error) {
	var h web.Hash
	found, err := a.store.Get(store.Runtime, keyWebPassword, &h)
	return h, found, err
}

// underInit reports whether this daemon is the child of sipedge's PID 1
// in the appliance image (initd sets SIPEDGE_PID1_CHILD).
func (a *App) underInit() bool {
	return os.Getenv("SIPEDGE_PID1_CHILD") == "1" && os.Getppid() == 1
}

// Management is a runtime change of the box's management address; the
// network subsystem applies it.
type Management struct {
	Interface string       `json:"interface,omitempty"`
	Address   netip.Prefix `json:"address"`
	Gateway   netip.Addr   `json:"gateway,omitzero"`
	Set       time.Time    `json:"set"`
}

// registerManagement adds management.set / management.show, unless the
// network subsystem has registered its own.
func (a *App) registerManagement() {
	a.ctl.Handle("management.set", "store a new management address as a runtime change: {address: CIDR, gateway, interface}", func(_ context.Context, p json.RawMessage) (any, error) {
		var q struct {
			Interface string `json:"interface"`
			Address   string `json:"address"`
			Gateway   string `json:"gateway"`
		}
		if err := ctl.DecodeParams(p, &q); err != nil {
			return nil, err
		}
		m := Management{Interface: q.Interface, Set: time.Now().UTC()}
		var err error
		if m.Address, err = netip.ParsePrefix(q.Address); err != nil {
			return nil, ctl.Errorf(ctl.CodeBadRequest, "address %q: want IP/prefix, e.g. 192.0.2.11/24", q.Address)
		}
		if q.Gateway != "" {
			if m.Gateway, err = netip.ParseAddr(q.Gateway); err != nil {
				return nil, ctl.Errorf(ctl.CodeBadRequest, "gateway %q: not an IP address", q.Gateway)
			}
			if !m.Address.Masked().Contains(m.Gateway) {
				return nil, ctl.Errorf(ctl.CodeBadRequest, "gateway %s is not inside %s", m.Gateway, m.Address.Masked())
			}
		}
		if m.Interface == "" {
			if mg := a.Config().Network.Management; mg != nil {
				m.Interface = mg.Interface
			}
		}
		if err := a.store.Put(store.Runtime, keyManagement, m); err != nil {
			return nil, err
		}
		a.events.Event("network.management", a.Config().Node.Name, fmt.Sprintf("management address set to %s (gateway %v, interface %q); applied by the network subsystem", m.Address, m.Gateway, m.Interface))
		return m, nil
	})
	a.ctl.Handle("management.show", "the management address: configured and runtime change", func(context.Context, json.RawMessage) (any, error) {
		out := map[string]any{}
		if mg := a.Config().Network.Management; mg != nil {
			out["configured"] = mg
		}
		var m Management
		if found, err := a.store.Get(store.Runtime, keyManagement, &m); err != nil {
			return nil, err
		} else if found {
			out["runtime"] = m
		}
		return out, nil
	})
}

// registerRestore keeps the previous content of the configuration file
// in <data_dir>/config.previous.yaml whenever a reload brings a new
// content, and adds config.restore, which puts it back and reloads (the
// current content becoming the previous one: restore twice to undo).
func (a *App) registerRestore() {
	path := a.opts.ConfigPath
	var mu sync.Mutex
	current, _ := os.ReadFile(path) // nil on the embedded default
	prevPath := func() string { return filepath.Join(a.Config().Node.DataDir, PreviousConfigFile) }
	a.onReload("config-history", func(c *config.Config) error {
		if path == "" {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		now, err := os.ReadFile(path)
		if err != nil || bytes.Equal(now, current) {
			return nil
		}
		if len(current) > 0 {
			if err := writeFileAtomic(filepath.Join(c.Node.DataDir, PreviousConfigFile), current); err != nil {
				return fmt.Errorf("keep previous configuration: %w", err)
			}
		}
		current = now
		return nil
	})
	a.ctl.Handle("config.restore", "put back the configuration file as it was before the last change, and reload", func(context.Context, json.RawMessage) (any, error) {
		if path == "" {
			return nil, ctl.Errorf(ctl.CodeConflict, "running on the embedded default: there is no file to restore")
		}
		prev, err := os.ReadFile(prevPath())
		if errors.Is(err, os.ErrNotExist) {
			return nil, ctl.Errorf(ctl.CodeNotFound, "no previous configuration kept yet (one is kept when a reload brings a changed file)")
		} else if err != nil {
			return nil, err
		}
		if _, err := config.Parse(prevPath(), prev); err != nil {
			return nil, ctl.Errorf(ctl.CodeConflict, "the previous configuration is not valid with this firmware:\n%v", err)
		}
		if err := writeFileAtomic(path, prev); err != nil {
			return nil, fmt.Errorf("restore %s: %w", path, err)
		}
		if err := a.reload(); err != nil {
			return nil, ctl.Errorf(ctl.CodeConflict, "restored %s but the reload failed:\n%v", path, err)
		}
		a.events.Event("config.restore", a.Config().Node.Name, "previous configuration restored into "+path)
		return map[string]string{"restored": path, "previous": prevPath()}, nil
	})
}

func writeFileAtomic(path string, data []byte) error {
	mode := os.FileMode(0o600)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
