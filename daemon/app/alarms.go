package app

import (
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Alarm is a condition the operator must fix while the box keeps
// working (a weak cluster key, ...). `ctl status` lists them, so the web
// page and the console banner show them; each is an event when raised
// and sipedge_alarm{id} is 1 while it stands.
type Alarm struct {
	ID       string    `json:"id"` // e.g. "cluster.key"
	Severity string    `json:"severity"`
	Message  string    `json:"message"`
	Since    time.Time `json:"since"`
}

// Alarm severities.
const (
	AlarmWarning  = "warning"
	AlarmCritical = "critical"
)

// alarms is the App's standing alarms.
type alarms struct {
	mu    sync.Mutex
	list  []Alarm
	gauge *prometheus.GaugeVec
}

// raiseAlarm sets (or replaces) the alarm id, logs it at error level and
// records an event.
func (a *App) raiseAlarm(id, severity, msg string) {
	al := &a.alarms
	al.mu.Lock()
	if al.gauge == nil {
		al.gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "sipedge", Name: "alarm",
			Help: "1 while an alarm stands (ctl status lists them), by id.",
		}, []string{"id"})
		if err := a.metrics().Register(al.gauge); err != nil {
			a.log.Warn("alarm metric not registered", "err", err)
		}
	}
	al.list = slices.DeleteFunc(al.list, func(x Alarm) bool { return x.ID == id })
	al.list = append(al.list, Alarm{ID: id, Severity: severity, Message: msg, Since: time.Now()})
	al.gauge.WithLabelValues(id).Set(1)
	al.mu.Unlock()
	a.log.Error("ALARM: "+msg, "alarm", id)
	a.events.Event("alarm", id, msg)
}

// Alarms returns the standing alarms.
func (a *App) Alarms() []Alarm {
	a.alarms.mu.Lock()
	defer a.alarms.mu.Unlock()
	return slices.Clone(a.alarms.list)
}
