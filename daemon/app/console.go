package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sipedge/sipedge/daemon/console"
	"github.com/sipedge/sipedge/daemon/ctl"
	"github.com/sipedge/sipedge/daemon/store"
	"github.com/sipedge/sipedge/daemon/web"
)

// setupConsole registers the serial console's login methods: the
// password is the web page's, checked by the daemon one attempt at a
// time behind a lockout (console.Gate) that a restarted console process
// does not reset. A password recovery requested at boot on the console
// port (PID 1 leaves console.RecoveryFile in node.data_dir) clears the
// password here, before anything can use it, and is an event.
func (a *App) setupConsole(context.Context) error {
	gate := console.NewGate(nil)
	node := a.Config().Node.Name
	flag := filepath.Join(a.Config().Node.DataDir, console.RecoveryFile)
	if b, err := os.ReadFile(flag); err == nil {
		if err := a.store.Delete(store.Runtime, keyWebPassword); err != nil {
			return fmt.Errorf("console: password recovery: %w", err)
		}
		if err := os.Remove(flag); err != nil {
			return fmt.Errorf("console: password recovery: %w", err)
		}
		a.log.Warn("console: password cleared by the recovery requested on the console port at boot", "request", string(b))
		a.events.Event("console.password_reset", node, "console and web password cleared: recovery requested on the console port at boot ("+firstLine(string(b))+"); the console asks for a new one")
	} else if !errors.Is(err, os.ErrNotExist) {
		a.log.Error("console: password recovery request unreadable", "path", flag, "err", err)
	}
	if !a.Config().Console.LoginOn() && a.underInit() {
		a.log.Warn("console: login is off (console.login: false): anyone at the serial console port gets the menu, factory reset and reboot included")
	}
	a.ctl.Handle(console.MethodSession, "the serial console's login: required, password set, locked", func(context.Context, json.RawMessage) (any, error) {
		_, set, err := a.webPassword()
		if err != nil {
			return nil, err
		}
		c := a.Config().Console
		return console.SessionInfo{LoginRequired: c.LoginOn(), PasswordSet: set, LockedSeconds: gate.Locked().Seconds(),
			IdleLogoutSeconds: c.IdleLogout.D().Seconds()}, nil
	})
	a.ctl.Handle(console.MethodLogin, "check the serial console's login password: {password}", func(_ context.Context, p json.RawMessage) (any, error) {
		var q struct {
			Password string `json:"password"`
		}
		if err := ctl.DecodeParams(p, &q); err != nil {
			return nil, err
		}
		if err := gate.Begin(); err != nil {
			if errors.Is(err, console.ErrLocked) {
				return console.LoginResult{LockedSeconds: gate.Locked().Seconds()}, nil
			}
			return nil, ctl.Errorf(ctl.CodeConflict, "%v", err)
		}
		h, set, err := a.webPassword()
		ok := err == nil && set && len(q.Password) <= 4*web.MaxPasswordLen && h.Verify(q.Password)
		n, locked := gate.Done(ok)
		if err != nil {
			return nil, err
		}
		if ok {
			a.events.Event("console.login", node, "operator logged in on the serial console")
			return console.LoginResult{OK: true}, nil
		}
		if locked > 0 {
			a.events.Event("console.lockout", node, fmt.Sprintf("serial console login locked for %v after %d wrong passwords in a row", locked, n))
		} else {
			a.events.Event("console.login_failed", node, fmt.Sprintf("wrong password on the serial console (%d in a row)", n))
		}
		return console.LoginResult{Failures: n, LockedSeconds: locked.Seconds()}, nil
	})
	return nil
}
