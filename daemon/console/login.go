package console

import (
	"context"
	"errors"
	"time"
)

// loginWait bounds a password check: PBKDF2 with 600,000 rounds takes
// seconds on a small box, more on an emulated one under load.
const loginWait = 90 * time.Second

// login runs until the operator is let in (true) or the input ends
// (false). The daemon decides whether a password is asked, checks it
// and keeps the lockout; a box with no password has one chosen first.
func (c *console) login() bool {
	c.idle.reset(0)
	c.method = nil
	shown := false
	for c.ctx.Err() == nil {
		var s SessionInfo
		ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
		err := c.o.Client.Call(ctx, MethodSession, nil, &s)
		cancel()
		if err != nil {
			c.printf("The daemon does not answer (%v).\n", firstLine(err.Error()))
			if _, err := c.prompt("Press Enter to try again. "); err != nil && !errors.Is(err, ErrCancel) {
				return false
			}
			continue
		}
		idle := time.Duration(s.IdleLogoutSeconds * float64(time.Second))
		c.loginRequired = s.LoginRequired
		if !s.LoginRequired {
			return true
		}
		if !shown {
			c.preBanner()
			shown = true
		}
		switch {
		case !s.PasswordSet:
			ok, err := c.choosePassword()
			if err != nil && !errors.Is(err, ErrCancel) {
				return false
			}
			if ok {
				c.idle.reset(idle)
				return true
			}
			continue
		case s.LockedSeconds > 0:
			c.printf("Console login locked for %v after wrong passwords.\n", roundUp(s.LockedSeconds))
			if _, err := c.prompt("Press Enter to try again. "); err != nil && !errors.Is(err, ErrCancel) {
				return false
			}
			continue
		}
		pw, err := c.promptHidden("Password: ")
		if errors.Is(err, ErrCancel) {
			continue
		}
		if err != nil {
			return false
		}
		var r LoginResult
		ctx, cancel = context.WithTimeout(c.ctx, loginWait)
		err = c.o.Client.Call(ctx, MethodLogin, map[string]string{"password": pw}, &r)
		cancel()
		switch {
		case err != nil:
			c.printf("Login failed: %v\n", err)
		case r.OK:
			c.idle.reset(idle)
			return true
		case r.LockedSeconds > 0 && r.Failures == 0:
			c.printf("Console login locked for %v.\n", roundUp(r.LockedSeconds))
		case r.LockedSeconds > 0:
			c.printf("Login incorrect. %d wrong passwords: locked for %v.\n", r.Failures, roundUp(r.LockedSeconds))
		default:
			c.printf("Login incorrect.\n")
		}
	}
	return false
}

func roundUp(sec float64) time.Duration {
	return time.Duration(sec * float64(time.Second)).Round(time.Second)
}

// choosePassword has the first password of the box chosen (it is also
// the web page's): on a new box, or after a recovery.
func (c *console) choosePassword() (bool, error) {
	c.printf("No password is set on this box. Choose one now: it protects this\nconsole and the web page's actions (at least 8 characters).\n")
	p1, err := c.promptHidden("New password: ")
	if err != nil {
		return false, err
	}
	p2, err := c.promptHidden("Again: ")
	if err != nil {
		return false, err
	}
	if p1 != p2 {
		c.printf("The two passwords differ; nothing changed.\n")
		return false, nil
	}
	if !c.call("web.password", map[string]string{"password": p1}, nil) {
		return false, nil
	}
	c.printf("Password set.\n")
	return true, nil
}

// logout ends the session: the next one starts at the login.
func (c *console) logout(why string) {
	c.printf("\n%s\n", why)
	c.o.Logger.Info("console: logged out", "why", why)
}
