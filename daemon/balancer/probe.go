package balancer

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// probe is one OPTIONS probe in flight.
type probe struct {
	core  *Core
	sent  time.Time
	t     *timer
	out   *listener // the socket it left from, where its reply comes
	drops uint64    // out's kernel drops when it left (ok: known)
	ok    bool
	waits int // timeouts not counted: the balancer was behind (probeLate)
}

// maxLateWaits bounds how often one probe's timeout is put off because
// the balancer itself was behind: a Core that dies during an overload
// is still marked down, at most this many probe timeouts later.
const maxLateWaits = 2

type probeTable struct {
	mu sync.Mutex
	m  map[string]*probe
}

// probeLoop sends OPTIONS to every Core each interval, from the UDP
// listener (TCP Cores over their connection), so replies come back
// through the normal workers.
func (b *Balancer) probeLoop() {
	defer b.wg.Done()
	tk := time.NewTicker(b.opt.Probe.Interval)
	defer tk.Stop()
	b.probeAll()
	for {
		select {
		case <-b.stop:
			return
		case <-tk.C:
			b.probeAll()
		}
	}
}

func (b *Balancer) probeAll() {
	if b.standby.Load() {
		return // the peer probes; its Core states are mirrored
	}
	for _, c := range b.pool.list() {
		b.sendProbe(c)
	}
}

func (b *Balancer) sendProbe(c *Core) {
	out := b.coreOut(b.outFor(c.transport, c.addr.Addr()), c.transport, c.addr, c)
	if out == nil {
		return
	}
	n := b.seq.Add(1)
	branch := b.probePrefix + strconv.FormatUint(n, 36)
	host := out.addr.String()
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "OPTIONS sip:%s SIP/2.0\r\n", c.addr)
	fmt.Fprintf(&buf, "Via: SIP/2.0/%s %s;branch=%s;rport\r\n", out.viaTp, host, branch)
	fmt.Fprintf(&buf, "Max-Forwards: 70\r\nFrom: <sip:sipedge@%s>;tag=%s\r\nTo: <sip:%s>\r\n", host, branch[len(sip.RFC3261BranchMagicCookie):], c.addr)
	fmt.Fprintf(&buf, "Call-ID: %s@%s\r\nCSeq: %d OPTIONS\r\nUser-Agent: sipedge\r\nAccept: application/sdp\r\nContent-Length: 0\r\n\r\n", branch, host, n&0x7fffffff)
	p := &probe{core: c, sent: time.Now(), out: out}
	if out.udp != nil {
		p.drops, p.ok = out.kernelDrops()
	}
	b.probes.mu.Lock()
	b.probes.m[branch] = p
	p.t = b.wheel.after(b.opt.Probe.Timeout, func() { b.probeTimeout(branch) })
	b.probes.mu.Unlock()
	if err := b.sendFrom(c.transport, c.addr, buf.Bytes(), nil, out.coreSide); err != nil {
		b.log.Debug("probe send", "core", c.name, "err", err)
	}
}

// probeTimeout judges a probe that got no reply within Probe.Timeout
// (wheel goroutine). When the balancer itself is behind on the socket
// the reply comes to (a datagram unread, or the kernel dropped some
// since the probe left), the silence says nothing of the Core: the
// timeout is put off, maxLateWaits times at most.
func (b *Balancer) probeTimeout(branch string) {
	b.probes.mu.Lock()
	p, pending := b.probes.m[branch]
	if !pending {
		b.probes.mu.Unlock()
		return
	}
	if p.waits < maxLateWaits && b.probeLate(p) {
		p.waits++
		b.stats.ProbesPutOff.Add(1)
		p.t = b.wheel.after(b.opt.Probe.Timeout, func() { b.probeTimeout(branch) })
		b.probes.mu.Unlock()
		return
	}
	delete(b.probes.m, branch)
	b.probes.mu.Unlock()
	b.probeResult(p.core, false, 0, 0, "no reply to OPTIONS within "+time.Since(p.sent).Round(time.Millisecond).String())
}

// probeLate reports whether p's socket is behind: a datagram waits
// unread, or the kernel dropped datagrams on it since p left.
func (b *Balancer) probeLate(p *probe) bool {
	if p.out.udp == nil {
		return false
	}
	if p.out.unread() {
		return true
	}
	n, ok := p.out.kernelDrops()
	return ok && p.ok && n > p.drops
}

func (b *Balancer) onProbeResponse(branch string, res *sip.Response) {
	if res.StatusCode < 200 {
		return
	}
	b.probes.mu.Lock()
	p, ok := b.probes.m[branch]
	delete(b.probes.m, branch)
	b.probes.mu.Unlock()
	if !ok {
		return
	}
	p.t.Stop()
	okCode := slices.Contains(b.opt.Probe.Codes, res.StatusCode)
	reason := ""
	if !okCode {
		reason = fmt.Sprintf("OPTIONS answered %d %s", res.StatusCode, res.Reason)
	}
	b.probeResult(p.core, okCode, res.StatusCode, time.Since(p.sent), reason)
}

// probeResult applies one probe outcome with hysteresis: down after
// down_after consecutive failures, up after up_after consecutive
// successes. The latency EWMA weighs each new sample 1/5.
func (b *Balancer) probeResult(c *Core, ok bool, code int, rtt time.Duration, reason string) {
	c.mu.Lock()
	c.lastProbe, c.lastCode = time.Now(), code
	if ok {
		c.fails = 0
		c.suspect = false
		c.succs++
		if !c.up && c.succs >= b.opt.Probe.UpAfter {
			c.up = true
		}
		if old := c.latency.Load(); old == 0 {
			c.latency.Store(int64(rtt))
		} else {
			c.latency.Store(old + (int64(rtt)-old)/5)
		}
	} else {
		c.succs = 0
		c.fails++
		if c.up && c.fails >= b.opt.Probe.DownAfter {
			c.up = false
		}
	}
	old, now := c.recompute()
	succs := c.succs
	c.mu.Unlock()
	if old == now {
		return
	}
	switch {
	case now == StateInactive:
		b.log.Warn("core down", "core", c.name, "reason", reason)
		b.pool.emit(EventCoreDown, c.name, reason)
		b.abandonCore(c)
	case old == StateInactive && now == StateActive:
		r := fmt.Sprintf("%d consecutive OPTIONS replies", succs)
		b.log.Info("core up", "core", c.name, "reason", r)
		b.pool.emit(EventCoreUp, c.name, r)
	case now == StateTrying:
		b.pool.emit(EventCoreTrying, c.name, reason)
	case old == StateTrying && now == StateActive:
		b.pool.emit(EventCoreUp, c.name, "OPTIONS answered again")
	}
}

// suspect marks an active Core trying after a passive failure (an INVITE
// attempt that got no answer): it is used only when no active Core is
// left until a probe succeeds. Probes alone take a Core down, so the
// balancer's own overload cannot mark a healthy Core dead.
func (b *Balancer) suspect(c *Core, reason string) {
	c.mu.Lock()
	c.suspect = true
	old, now := c.recompute()
	c.mu.Unlock()
	if old != now && now == StateTrying {
		b.log.Info("core suspect", "core", c.name, "reason", reason)
		b.pool.emit(EventCoreTrying, c.name, reason)
	}
}

// abandonCore moves the INVITEs still ringing on a Core that went down
// (a provisional came, no final) to the next Core: the caller has seen no
// final response, so the call can still be set up elsewhere. The dead
// branch is CANCELled in case the Core is only unreachable.
func (b *Balancer) abandonCore(c *Core) {
	var cts []*clientTx
	b.ctx.each(func(ct *clientTx) bool {
		if ct.core == c {
			cts = append(cts, ct)
		}
		return true
	})
	for _, ct := range cts {
		st := ct.st
		st.mu.Lock()
		if !ct.done && st.client == ct && !st.final && st.invite && ct.provisional {
			ct.stop()
			b.sendCancel(ct)
			c.failovers.Add(1)
			if st.cancelled {
				b.finish(st, 487, "Request Terminated", "")
			} else if next := b.nextCore(st); next != nil {
				b.stats.Failovers.Add(1)
				b.dialogs.create(st.callID, st.callerTag, next)
				b.attempt(st, next, next.transport, next.addr)
			} else {
				b.finish(st, 503, "Service Unavailable", b.retryAfter())
			}
		}
		st.mu.Unlock()
	}
}
