package app

import (
	"slices"
	"strings"

	"github.com/sipedge/sipedge/daemon/failover"
)

// placementAlarm turns a VIP placement verdict (daemon/failover,
// placement.go) into an event and the alarm vip.placement.GROUP, raised
// while the check fails and cleared when it passes: the page, the
// console banner and `ctl status` show it, sipedge_alarm counts it.
func (a *App) placementAlarm(group string, info failover.PlacementInfo) {
	id := "vip.placement." + group
	if info.OK {
		a.events.Event("vip.placement", group, "placement check passes: the peer is on the VIP's segment")
		a.clearAlarm(id)
		return
	}
	msg := "VIP " + group + " may not be able to move to the peer: " + strings.Join(info.Findings, "; ")
	a.events.Event("vip.placement", group, msg)
	a.raiseAlarm(id, AlarmWarning, msg)
}

// clearAlarm ends the alarm id, if it stands, and records an event.
func (a *App) clearAlarm(id string) {
	al := &a.alarms
	al.mu.Lock()
	n := len(al.list)
	al.list = slices.DeleteFunc(al.list, func(x Alarm) bool { return x.ID == id })
	cleared := len(al.list) != n
	if al.gauge != nil && cleared {
		al.gauge.WithLabelValues(id).Set(0)
	}
	al.mu.Unlock()
	if cleared {
		a.log.Info("alarm cleared", "alarm", id)
		a.events.Event("alarm.cleared", id, "")
	}
}
