package failover

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/sipedge/sipedge/hal"
)

// runChecks probes every check of every group until ctx ends.
func (m *Manager) runChecks(ctx context.Context) {
	for _, g := range m.groups {
		for _, c := range g.checks {
			go m.checkLoop(ctx, g, c)
		}
	}
}

func (m *Manager) checkLoop(ctx context.Context, g *group, c *checkState) {
	t := time.NewTicker(c.opt.Interval)
	defer t.Stop()
	if c.mysql != nil {
		defer c.mysql.close()
	}
	for {
		pctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
		var err error
		if c.mysql != nil {
			m.mu.Lock()
			holding := g.state == StateMaster
			m.mu.Unlock()
			err = c.mysql.probe(pctx, c.opt.Timeout, c.opt.Interval, holding)
		} else {
			err = probe(pctx, c.opt, m.links)
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		m.reportCheck(g, c, err, m.opt.Clock.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reportCheck records one probe result; after Fall failures the check is
// down, after Rise successes up again, and the group is re-evaluated.
func (m *Manager) reportCheck(g *group, c *checkState, err error, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	was := c.ok
	if err != nil {
		c.lastErr = err.Error()
		c.oks = 0
		c.fails++
		if c.fails >= c.opt.Fall {
			c.ok = false
		}
	} else {
		c.fails = 0
		c.oks++
		if c.oks >= c.opt.Rise {
			c.ok, c.lastErr = true, ""
		}
	}
	if was == c.ok {
		return
	}
	effect := "fault"
	if c.opt.Weight > 0 {
		effect = fmt.Sprintf("priority -%d", c.opt.Weight)
	}
	if c.ok {
		m.log.Info("health check up", "group", g.opt.Name, "check", c.opt.String())
	} else {
		m.log.Warn("health check down", "group", g.opt.Name, "check", c.opt.String(), "effect", effect, "err", c.lastErr)
	}
	m.met.setPriority(g.opt.Name, g.effectivePriority())
	m.sendNow = max(m.sendNow, 1) // the peer must see the new priority now
	m.evaluate(g, now)
	m.flush(now)
	m.poke()
}

// probe runs one check.
func probe(ctx context.Context, t TrackOptions, links hal.Links) error {
	switch t.Kind {
	case CheckTCP:
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", t.Target)
		if err != nil {
			return fmt.Errorf("tcp connect %s: %w", t.Target, err)
		}
		return c.Close()
	case CheckSIPOptions:
		return SIPOptions(ctx, t.Target)
	case CheckLink:
		st, err := links.Link(t.Target)
		if err != nil {
			return fmt.Errorf("link %s: %w", t.Target, err)
		}
		if !st.AdminUp || !st.OperUp {
			return fmt.Errorf("link %s down (admin up %v, oper up %v)", t.Target, st.AdminUp, st.OperUp)
		}
		return nil
	}
	return fmt.Errorf("unknown check kind %q", t.Kind)
}

// SIPOptions sends one SIP OPTIONS request over UDP to target (host:port)
// and waits for its response until ctx ends. Any response from 200 to
// 499 means the SIP service is alive; 5xx/6xx (e.g. a balancer with no
// Core left answering 503) and silence are failures.
func SIPOptions(ctx context.Context, target string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", target)
	if err != nil {
		return fmt.Errorf("sip options %s: %w", target, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	} else {
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	}
	var rb [12]byte
	_, _ = rand.Read(rb[:])
	tag := hex.EncodeToString(rb[:])
	la := c.LocalAddr().(*net.UDPAddr)
	host := la.IP.String()
	if la.IP.To4() == nil {
		host = "[" + host + "]"
	}
	callID := tag + "@sipedge-failover"
	req := "OPTIONS sip:" + target + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + host + ":" + strconv.Itoa(la.Port) + ";branch=z9hG4bK" + tag + ";rport\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:failover@" + host + ">;tag=" + tag[:8] + "\r\n" +
		"To: <sip:" + target + ">\r\n" +
		"Call-ID: " + callID + "\r\n" +
		"CSeq: 1 OPTIONS\r\n" +
		"User-Agent: sipedge-failover\r\n" +
		"Accept: application/sdp\r\n" +
		"Content-Length: 0\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		return fmt.Errorf("sip options %s: send: %w", target, err)
	}
	buf := make([]byte, 8192)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return fmt.Errorf("sip options %s: no response: %w", target, err)
		}
		code, cid, err := parseSIPResponse(buf[:n])
		if err != nil || cid != callID {
			continue // not ours; keep waiting until the deadline
		}
		if code >= 200 && code < 500 {
			return nil
		}
		if code < 200 {
			continue // provisional
		}
		return fmt.Errorf("sip options %s: answered %d", target, code)
	}
}

// parseSIPResponse returns the status code and Call-ID of a SIP response.
func parseSIPResponse(b []byte) (int, string, error) {
	s := string(b)
	head, _, _ := strings.Cut(s, "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	f := strings.Fields(lines[0])
	if len(f) < 2 || f[0] != "SIP/2.0" {
		return 0, "", errors.New("not a SIP response")
	}
	code, err := strconv.Atoi(f[1])
	if err != nil || code < 100 || code > 699 {
		return 0, "", fmt.Errorf("bad status code %q", f[1])
	}
	for _, l := range lines[1:] {
		name, val, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		if strings.EqualFold(name, "Call-ID") || name == "i" {
			return code, strings.TrimSpace(val), nil
		}
	}
	return code, "", errors.New("no Call-ID")
}
