package config

import (
	"fmt"
	"reflect"
	"strings"
)

// A zero written in the file means zero where zero makes sense: the
// waits `vips[].failback.stable_for` (hand back at once),
// `vips[].garp.repeat_after` (no second announcement) and
// `cluster.handover_relay` (no relay) take it literally (applyDefaults),
// as do `security.flood.requests` (flood protection off) and
// `sip.cores[].max_calls` (no limit). The fields below may not be zero. Files written before this rule had
// a 0 there silently replaced by the default; such a file keeps working
// (the default is used, as before) under a warning, and `sipedge config
// validate` fails on it, naming the field and the value to write.

// nonZero is a field that may not be zero, and why.
type nonZero struct {
	path string // with [] where a list index goes, e.g. vips[].deadtime
	why  string
}

var nonZeroFields = []nonZero{
	{"cluster.interval", "heartbeats need a period"},
	{"cluster.replication.port", "a TCP port"},
	{"vips[].deadtime", "a peer silent for no time at all is never alive"},
	{"vips[].initdead", "a booting box must wait at least a deadtime to hear its peer"},
	{"vips[].garp.count", "a takeover nobody is told about leaves clients on the old box"},
	{"network.bonds[].miimon", "link monitoring needs a period"},
	{"watchdog.timeout", "the watchdog needs a timeout"},
	{"sip.probe.interval", "Core probes need a period"},
	{"sip.probe.timeout", "a probe answered in no time at all never is"},
	{"sip.probe.down_after", "a count of failed probes"},
	{"sip.probe.up_after", "a count of answered probes"},
	{"sip.retry.attempt_timeout", "a Core needs time to answer"},
	{"sip.retry.max_tries", "a call needs one try at least"},
	{"sip.dialog_ttl", "a dialog's lifetime"},
	{"sip.udp_buffer_bytes", "a buffer size"},
	{"sip.overload.queue_delay", "every call would be refused"},
	{"sip.overload.queue_length", "a queue size"},
	{"sip.overload.retry_after", "the 503's Retry-After"},
	{"sip.tcp.idle_timeout", "a connection's idle time"},
	{"sip.tcp.message_timeout", "a message's time to arrive"},
	{"sip.tcp.max_connections", "a connection cap"},
	{"sip.tcp.max_per_source", "a connection cap"},
	{"sip.caps.dialogs", "a table cap"},
	{"sip.caps.transactions", "a table cap"},
	{"sip.caps.branches", "a table cap"},
	{"sip.caps.session_expires", "a session's lifetime"},
	{"sip.cores[].weight", "weight 0 was always 1; take a Core out with ctl cores disable"},
	{"security.flood.per", "a rate needs a period"},
	{"security.flood.ban", "a ban's length"},
	{"security.flood.sources", "a table cap"},
	{"security.limits.message_bytes", "a size limit"},
	{"security.limits.uri_bytes", "a size limit"},
	{"security.limits.headers", "a count limit"},
	{"time.poll", "SNTP needs a period"},
	{"time.step_threshold", "a threshold"},
	{"time.panic", "a threshold"},
	{"console.idle_logout", "a session's idle time"},
}

// zeroWarnings reports every non-zero field the file gave as zero,
// before applyDefaults replaces it. set is the decoder's path -> line.
func (c *Config) zeroWarnings(set map[string]int) Problems {
	var ps Problems
	for path, line := range set {
		generic := genericPath(path)
		for _, f := range nonZeroFields {
			if generic != f.path || !c.isZero(path) {
				continue
			}
			ps = append(ps, Problem{Line: line, Path: path,
				Msg: fmt.Sprintf("may not be zero (%s); the default is used, as before: write it, or remove the line", f.why)})
		}
	}
	ps.sort()
	return ps
}

// genericPath turns vips[3].deadtime into vips[].deadtime.
func genericPath(path string) string {
	var b strings.Builder
	in := false
	for _, r := range path {
		switch {
		case r == '[':
			in = true
			b.WriteString("[]")
		case r == ']':
			in = false
		case !in:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isZero reports whether the field at path (yaml names, list indexes)
// holds its zero value.
func (c *Config) isZero(path string) bool {
	v := reflect.ValueOf(c).Elem()
	for _, part := range strings.Split(path, ".") {
		name, idx, hasIdx := strings.Cut(part, "[")
		v = fieldByYAML(v, name)
		if !v.IsValid() {
			return false
		}
		if hasIdx {
			var i int
			if _, err := fmt.Sscanf(idx, "%d]", &i); err != nil || v.Kind() != reflect.Slice || i >= v.Len() {
				return false
			}
			v = v.Index(i)
		}
	}
	return v.IsValid() && v.IsZero()
}

// fieldByYAML returns the field of struct (or pointer to struct) v
// whose yaml tag is name.
func fieldByYAML(v reflect.Value, name string) reflect.Value {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return reflect.Value{}
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return reflect.Value{}
	}
	t := v.Type()
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag == name {
			return v.Field(i)
		}
	}
	return reflect.Value{}
}
