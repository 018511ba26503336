package config

import "time"

// Console is the serial console's login (daemon/console).
type Console struct {
	// Login asks for the password (the web page's) before the menu
	// (default true; the embedded default for a workstation turns it
	// off). A box with no password yet has one chosen first.
	Login *bool `yaml:"login"`
	// Recovery lets PID 1 offer, in the first seconds of boot on the
	// console port, to clear a forgotten password (default true).
	Recovery *bool `yaml:"recovery"`
	// IdleLogout ends a logged-in session after this long without a key
	// (default 10m).
	IdleLogout Duration `yaml:"idle_logout"`
}

// LoginOn reports whether the console asks for the password.
func (c Console) LoginOn() bool { return c.Login == nil || *c.Login }

// RecoveryOn reports whether PID 1 offers the password recovery.
func (c Console) RecoveryOn() bool { return c.Recovery == nil || *c.Recovery }

func (c *Config) consoleDefaults() { orDur(&c.Console.IdleLogout, 10*time.Minute) }

func (c *Config) validateConsole(add func(string, string, ...any)) {
	if d := c.Console.IdleLogout.D(); d < 10*time.Second || d > 24*time.Hour {
		add("console.idle_logout", "%v is outside 10s..24h", d)
	}
}
