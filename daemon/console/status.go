package console

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// status is menu entry 1: the node's state and every subsystem's
// section as a short operator's summary (summary.go); a section without
// one is flattened to "key: value" lines, its empty and zero values left
// out.
func (c *console) status() {
	var st struct {
		Node     string `json:"node"`
		Profile  string `json:"profile"`
		Platform string `json:"platform"`
		Version  string `json:"version"`
		Uptime   string `json:"uptime"`
		Config   string `json:"config"`
		Store    struct {
			Path  string `json:"path"`
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		} `json:"store"`
		Subsystems []struct {
			Name string `json:"name"`
			OK   bool   `json:"ok"`
		} `json:"subsystems"`
		Sections map[string]json.RawMessage `json:"sections"`
	}
	if !c.call("status", nil, &st) {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "node %s  profile %s  platform %s\n", st.Node, st.Profile, st.Platform)
	fmt.Fprintf(&b, "version %s  uptime %s\nconfig %s\n", st.Version, st.Uptime, st.Config)
	store := "ok"
	if !st.Store.OK {
		store = "FAULT: " + st.Store.Error
	}
	fmt.Fprintf(&b, "store %s (%s)\n", st.Store.Path, store)
	subs := make([]named, 0, len(st.Subsystems))
	for _, s := range st.Subsystems {
		subs = append(subs, named{s.Name, s.OK})
	}
	fmt.Fprintf(&b, "subsystems: %s\n", states(subs, "alive", "STALE"))
	done := map[string]bool{}
	for _, sm := range summarizers {
		raw, ok := st.Sections[sm.name]
		if !ok || string(raw) == "null" {
			continue
		}
		done[sm.name] = true
		b.WriteString("\n")
		if err := sm.fn(&b, raw); err != nil {
			fmt.Fprintf(&b, "[%s]\n", sm.name)
			flatten(&b, "", raw)
		}
	}
	for _, n := range sortedKeys(st.Sections) {
		if !done[n] {
			fmt.Fprintf(&b, "\n[%s]\n", n)
			flatten(&b, "", st.Sections[n])
		}
	}
	c.page(b.String())
	c.pause()
}

// flatten prints JSON as "key: value" lines, nested keys joined by dots.
func flatten(b *strings.Builder, prefix string, raw json.RawMessage) {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		fmt.Fprintf(b, "%s%s\n", prefix, raw)
		return
	}
	var walk func(p string, v any)
	walk = func(p string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for _, k := range sortedKeys(x) {
				walk(join(p, k), x[k])
			}
		case []any:
			for i, e := range x {
				walk(join(p, strconv.Itoa(i)), e)
			}
		default:
			if x != nil && x != false && x != "" && x != float64(0) {
				fmt.Fprintf(b, "  %s: %v\n", p, x)
			}
		}
	}
	walk(prefix, v)
}

func join(p, k string) string {
	if p == "" {
		return k
	}
	return p + "." + k
}
