package failover

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Run opens the heartbeat socket, removes stale VIPs, and runs the state
// machines until ctx ends. Then it releases every VIP it holds, tells the
// peers (so they take over at once) and returns.
func (m *Manager) Run(ctx context.Context) error {
	laddr, err := net.ResolveUDPAddr("udp", m.opt.Listen)
	if err != nil {
		return fmt.Errorf("failover: listen address %q: %w", m.opt.Listen, err)
	}
	var peers []netip.AddrPort
	for _, p := range m.opt.Peers {
		ap, err := netip.ParseAddrPort(p)
		if err != nil {
			ua, rerr := net.ResolveUDPAddr("udp", p)
			if rerr != nil {
				return fmt.Errorf("failover: peer address %q: %w", p, rerr)
			}
			ap = ua.AddrPort()
		}
		peers = append(peers, ap)
	}
	conn, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return fmt.Errorf("failover: listen %s: %w", m.opt.Listen, err)
	}
	defer conn.Close()
	// Room for the peer's heartbeats behind a burst of junk: the kernel's
	// default (about 200 KiB, a few hundred datagrams) fills in
	// milliseconds under a flood, and what does not fit is dropped.
	rcvbuf, err := setReadBuffer(conn, HeartbeatReadBuffer)
	if err != nil || (rcvbuf > 0 && rcvbuf < HeartbeatReadBuffer) {
		m.log.Warn("heartbeat socket: receive buffer smaller than asked (unprivileged: capped by net.core.rmem_max)", "want", HeartbeatReadBuffer, "have", rcvbuf, "err", err)
	}
	m.setPeers(peers)
	if laddr.IP == nil || laddr.IP.IsUnspecified() {
		m.log.Warn("heartbeat socket on a wildcard address: heartbeats leave from whatever address the route picks, and the peer reads only those from the address it has for this box (cluster.peer)", "listen", m.opt.Listen)
	}

	m.mu.Lock()
	m.send = func(b []byte) error {
		var errs []error
		for _, p := range peers {
			if _, err := conn.WriteToUDPAddrPort(b, p); err != nil {
				errs = append(errs, fmt.Errorf("to %s: %w", p, err))
			}
		}
		return errors.Join(errs...)
	}
	m.mu.Unlock()
	if err := m.start(m.opt.Clock.Now()); err != nil {
		return fmt.Errorf("failover: %w", err)
	}
	m.log.Info("failover running", "node", m.opt.Node, "listen", m.opt.Listen, "peers", m.opt.Peers, "interval", m.opt.Interval, "groups", len(m.groups), "rcvbuf", rcvbuf)

	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, MaxMessageSize+1)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				if cctx.Err() != nil || errors.Is(err, net.ErrClosed) {
					return
				}
				m.log.Warn("heartbeat receive", "err", err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			m.receiveFrom(buf[:n], from, m.opt.Clock.Now())
			m.poke()
		}
	}()
	m.runChecks(cctx)
	m.runPlacement(cctx)

	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if m.opt.Beat != nil {
			m.opt.Beat()
		}
		next := m.step(m.opt.Clock.Now())
		d := time.Until(next)
		if d < time.Millisecond {
			d = time.Millisecond
		}
		timer.Reset(d)
		due := time.Now().Add(d)
		select {
		case <-ctx.Done():
			m.shutdown(m.opt.Clock.Now())
			m.awaitHandover()
			cancel()
			_ = conn.Close()
			wg.Wait()
			m.annWG.Wait()
			done := make(chan struct{})
			go func() { m.notifier.wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				m.log.Warn("notify commands still running at stop")
			}
			return nil
		case <-timer.C:
			if late := time.Since(due); late > m.opt.Interval {
				// The whole box stalled (measured: 2.7 s on an overloaded
				// host): the peer's heartbeats may be waiting in the socket.
				// Let the receiver read them before deciding on silence,
				// else this box takes a VIP the peer still holds.
				m.log.Warn("failover loop woke late; reading queued heartbeats first", "late", late.Round(time.Millisecond))
				time.Sleep(5 * time.Millisecond)
			}
		case <-m.wake:
		}
	}
}

// awaitHandover runs at a clean stop after shutdown released the VIPs:
// while the receive loop still runs, it waits (at most the relay window)
// until every released group's peer says it holds the VIP, keeps
// relaying stopLinger more, then closes the relay windows.
func (m *Manager) awaitHandover() {
	m.mu.Lock()
	if !m.relay.isOpen() {
		m.relay.closeAll()
		m.mu.Unlock()
		return
	}
	since := m.opt.Clock.Now()
	deadline := time.Now().Add(m.relay.dur)
	m.mu.Unlock()
	taken := func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, g := range m.groups {
			if !g.releasedAtStop {
				continue
			}
			ok := false
			for _, p := range g.peers {
				if p.status.State == StateMaster && p.heard.After(since) {
					ok = true
				}
			}
			if !ok {
				return false
			}
		}
		return true
	}
	for !taken() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if d := time.Until(deadline); d > 0 {
		time.Sleep(min(stopLinger, d))
	}
	m.mu.Lock()
	m.relay.closeAll()
	m.mu.Unlock()
}
