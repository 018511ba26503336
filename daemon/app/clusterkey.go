package app

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sipedge/sipedge/daemon/config"
)

// ErrWeakClusterKey refuses a new box's start with a weak cluster key.
var ErrWeakClusterKey = errors.New("cluster key refused")

// checkClusterKey judges the cluster key file at start. A weak one
// (readable by group or others, a short printable key, a pattern) is
// refused on a new box; a box that ran before (its store holds events of
// an earlier run) keeps working with it, as it did before this check
// existed, under a standing alarm: an update must not cut a pair apart.
func (a *App) checkClusterKey(cfg *config.Config) error {
	if cfg.Cluster == nil {
		return nil
	}
	_, weak, err := config.ReadClusterKey(cfg.Cluster.KeyFile)
	if err != nil {
		return err
	}
	if len(weak) == 0 {
		return nil
	}
	msg := strings.Join(weak, "; ")
	earlier, err := a.store.Events(1, 0)
	if err != nil {
		return fmt.Errorf("cluster key: tell a new box from an updated one: %w", err)
	}
	if len(earlier) == 0 {
		return fmt.Errorf("%w: %s", ErrWeakClusterKey, msg)
	}
	a.raiseAlarm("cluster.key", AlarmCritical, "weak cluster key, kept because this box ran with it before: "+msg+" (the same new key on both boxes, then restart each)")
	return nil
}
