package console

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sipedge/sipedge/daemon/config"
	"github.com/sipedge/sipedge/daemon/pair"
	"github.com/sipedge/sipedge/daemon/timesync"
	"github.com/sipedge/sipedge/daemon/version"
)

// preBanner is what the console shows before the login: the product,
// version and hostname, and the web page's certificate fingerprint, for
// the operator to pin.
func (c *console) preBanner() {
	host, _ := c.o.Hostname()
	c.printf("\n%s\n", strings.Repeat("=", Width-1))
	c.printf(" sipedge %s  -  %s\n", version.Version, host)
	c.fingerprint()
	c.printf("%s\n", strings.Repeat("=", Width-1))
}

// fingerprint prints the web certificate's fingerprint, if any, cut at
// colons to fit the width (a SHA-256 as hex pairs is 95 characters).
func (c *console) fingerprint() {
	fp := c.tlsFingerprint()
	if fp == "" {
		return
	}
	c.printf(" web certificate SHA-256:\n")
	const room = Width - 4
	for len(fp) > room {
		cut := strings.LastIndexByte(fp[:room], ':') + 1
		if cut <= 0 {
			cut = room
		}
		c.printf("  %s\n", fp[:cut])
		fp = fp[cut:]
	}
	c.printf("  %s\n", fp)
}

// tlsFingerprint is the web certificate's fingerprint from `ctl web`
// ("" when the daemon has none or no such method).
func (c *console) tlsFingerprint() string {
	var w struct {
		Fingerprint string `json:"tls_fingerprint"`
	}
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	if !c.available(methodWeb) || c.o.Client.Call(ctx, methodWeb, nil, &w) != nil {
		return ""
	}
	return w.Fingerprint
}

type vipGroup struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Role    string `json:"role"`
	State   string `json:"state"`
	Holder  string `json:"holder"`
}

type vipStatus struct {
	Groups []vipGroup `json:"groups"`
}

func (c *console) banner() {
	host, _ := c.o.Hostname()
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	c.method = nil // re-ask which methods the daemon has
	c.printf("\n%s\n", strings.Repeat("=", Width-1))
	c.printf(" sipedge %s  -  %s\n", version.Version, host)
	var shown map[string]string
	if err := c.o.Client.Call(ctx, "config.show", nil, &shown); err != nil {
		c.printf(" daemon: NOT ANSWERING (%v)\n", err)
		c.printf("%s\n", strings.Repeat("=", Width-1))
		return
	}
	cfg, err := config.Parse("daemon", []byte(shown["yaml"]))
	if err != nil {
		for i, l := range wrapWords("configuration: "+firstLine(err.Error()), Width-3) {
			c.printf(" %s%s\n", strings.Repeat(" ", min(i, 1)*2), l)
		}
	} else {
		role := "edge (SIP balancer)"
		if cfg.SIP == nil {
			role = "db"
		}
		c.printf(" node %s   role %s   profile %s\n", cfg.Node.Name, role, cfg.Node.Profile)
		c.printf(" management: %s\n", c.managementText(cfg))
	}
	if t := c.timeText(); t != "" {
		c.printf(" time: %s\n", t)
	}
	for _, a := range c.standingAlarms(ctx) {
		for i, l := range wrapWords(a, Width-8) {
			if i == 0 {
				c.printf(" ALARM %s\n", l)
			} else {
				c.printf("       %s\n", l)
			}
		}
	}
	var pv pair.View
	var vs vipStatus
	if c.available(pair.MethodPair) && c.o.Client.Call(ctx, pair.MethodPair, nil, &pv) == nil && len(pv.Boxes) > 1 {
		// Both boxes side by side (with each VIP group's state and holder).
		for _, l := range strings.Split(strings.TrimRight(pair.Compact(pv, time.Now(), Width-2), "\n"), "\n") {
			c.printf(" %s\n", l)
		}
	} else if c.available("vip") && c.o.Client.Call(ctx, "vip", nil, &vs) == nil {
		for _, g := range vs.Groups {
			c.printf(" VIP %-8s %-18s %-8s state %-8s holder %s\n", g.Name, g.Address, g.Role, g.State, g.Holder)
		}
		if len(vs.Groups) == 0 {
			c.printf(" VIP: none\n")
		}
	} else if cfg != nil && len(cfg.VIPs) > 0 {
		for _, v := range cfg.VIPs {
			c.printf(" VIP %-8s %-18s %-8s state unknown (failover not running)\n", v.Name, v.Address, v.Role)
		}
	} else {
		c.printf(" VIP: none\n")
	}
	c.fingerprint()
	c.printf("%s\n", strings.Repeat("=", Width-1))
}

// standingAlarms are the alarms of `ctl status` (a weak cluster key, a
// VIP that cannot move, ...), one line each.
func (c *console) standingAlarms(ctx context.Context) []string {
	var st struct {
		Alarms []struct {
			Message string `json:"message"`
		} `json:"alarms"`
	}
	if !c.available("status") || c.o.Client.Call(ctx, "status", nil, &st) != nil {
		return nil
	}
	var out []string
	for _, a := range st.Alarms {
		out = append(out, a.Message)
	}
	return out
}

// wrapWords cuts s into lines of at most n bytes at spaces (a word
// longer than n is cut).
func wrapWords(s string, n int) []string {
	var lines []string
	for len(s) > n {
		cut := strings.LastIndexByte(s[:n+1], ' ')
		if cut <= 0 {
			cut = n
		}
		lines = append(lines, strings.TrimRight(s[:cut], " "))
		s = strings.TrimLeft(s[cut:], " ")
	}
	return append(lines, s)
}

func (c *console) managementText(cfg *config.Config) string {
	var m struct {
		Configured *struct {
			Interface string `json:"Interface"`
			Address   string `json:"Address"`
		} `json:"configured"`
		Runtime *struct {
			Interface string `json:"interface"`
			Address   string `json:"address"`
		} `json:"runtime"`
	}
	if c.available("management.show") {
		ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
		defer cancel()
		if c.o.Client.Call(ctx, "management.show", nil, &m) == nil && m.Runtime != nil {
			return fmt.Sprintf("%s on %s (set at runtime)", m.Runtime.Address, orNone(m.Runtime.Interface))
		}
	}
	if mg := cfg.Network.Management; mg != nil {
		return fmt.Sprintf("%s on %s", mg.Address, orNone(mg.Interface))
	}
	return "not configured"
}

func orNone(s string) string {
	if s == "" {
		return "(default interface)"
	}
	return s
}

// timeText is the clock's sync state for the banner ("" without
// time sync).
func (c *console) timeText() string {
	var st timesync.Status
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	if !c.available(timesync.MethodTime) || c.o.Client.Call(ctx, timesync.MethodTime, nil, &st) != nil || len(st.Servers) == 0 {
		return ""
	}
	if !st.Synced {
		return "NOT synchronised (1) Status, [time] says why)"
	}
	off := time.Duration(st.OffsetSeconds * float64(time.Second)).Round(time.Millisecond)
	return fmt.Sprintf("synchronised to %s (last poll: offset %v, %s)", st.Server, off, st.LastAction)
}
