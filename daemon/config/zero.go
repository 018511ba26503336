package config

import (
	"fmt"
	"reflect"
	"strings"
)

// A zero written in the file means zero where zero makes sense: the
// waits `vips[].failback.stable_for` (hand back at once),
// `vips[].garp.repeat_after` (no second announcement) and
// `cluster.handover_relay` (no relay) take it literally (applyDefaults).
// The fields below may not be zero. Files written before this rule had
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
	{"vips[].deadtime", "a peer silent for no time at all is never alive"},
	{"vips[].initdead", "a booting box must wait at least a deadtime to hear its peer"},
	{"vips[].garp.count", "a takeover nobody is told about leaves clients on the old box"},
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
