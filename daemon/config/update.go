package config

import "time"

// Update is the trial boot of a new firmware (daemon/update).
type Update struct {
	// CommitAfter is how long the new firmware must stay healthy on its
	// trial boot (every subsystem alive, SIP answering, the peer heard
	// when there is one, /data on its partition) before it commits its
	// slot (default 60s).
	CommitAfter Duration `yaml:"commit_after"`
	// GiveUpAfter: a trial not committed this long after the daemon
	// started has failed its health check; the box reboots into the old
	// firmware (default 10m, at least twice commit_after).
	GiveUpAfter Duration `yaml:"give_up_after"`
}

func (c *Config) updateDefaults() {
	orDur(&c.Update.CommitAfter, time.Minute)
	orDur(&c.Update.GiveUpAfter, 10*time.Minute)
}

func (c *Config) validateUpdate(add func(string, string, ...any)) {
	ca, gu := c.Update.CommitAfter.D(), c.Update.GiveUpAfter.D()
	if ca < time.Second || ca > time.Hour {
		add("update.commit_after", "%v is outside 1s..1h", ca)
	}
	if gu < 2*ca || gu > 24*time.Hour {
		add("update.give_up_after", "%v must be at least twice commit_after (%v) and at most 24h", gu, ca)
	}
}
