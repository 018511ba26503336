package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/sipedge/sipedge/daemon/balancer"
	"github.com/sipedge/sipedge/daemon/config"
	"github.com/sipedge/sipedge/daemon/failover"
	"github.com/sipedge/sipedge/daemon/replica"
)

// vipPoll is how often the replication role follows the SIP VIP group's
// state (the failover's status), so the balancer turns active within
// this of a takeover.
const vipPoll = 20 * time.Millisecond

// setupReplica builds the hot-standby channel for the balancer b (called
// from setupBalancer, before b starts) when cluster.replication is on:
// b's dialog changes feed it, and the box that holds the SIP VIP streams
// while the other mirrors. Until the VIP is ours the balancer is in
// standby (no probes, no dialog expiry, no Core events).
func (a *App) setupReplica(_ context.Context, b *balancer.Balancer) error {
	cfg := a.Config()
	if cfg.Cluster == nil || !cfg.Cluster.Replication.On() || cfg.SIP == nil {
		return nil
	}
	rc := cfg.Cluster.Replication
	key, err := os.ReadFile(cfg.Cluster.KeyFile)
	if err != nil {
		return fmt.Errorf("replication: cluster key: %w", err)
	}
	group := sipGroup(cfg)
	if group == "" {
		return errors.New("replication: no VIP group carries the SIP listeners (vips:)")
	}
	r, err := replica.New(replica.Options{
		Node: cfg.Node.Name, Listen: rc.Listen, Peer: rc.Peer, Key: bytes.TrimSpace(key),
		Logger: a.log.With("subsystem", "replica"),
	})
	if err != nil {
		return err
	}
	r.Attach(b)
	b.ObserveDialogs(r)
	r.SetActive(false)
	if err := a.metrics().Register(replica.NewCollector(r)); err != nil {
		a.log.Warn("replication metrics not registered", "err", err)
	}
	a.addStatus("replica", func() any { return r.Status() })
	a.ctl.Handle("replica", "hot standby: role, connected, lag, dialogs mirrored, counters", func(context.Context, json.RawMessage) (any, error) {
		return r.Status(), nil
	})
	a.onReload("replica", func(c *config.Config) error {
		if c.Cluster == nil || !reflect.DeepEqual(c.Cluster.Replication, rc) {
			return errors.New("cluster.replication changes take effect at the next restart")
		}
		return nil
	})
	a.add("replica", func(ctx context.Context) error {
		go a.followVIP(ctx, r, group)
		return r.Run(ctx)
	})
	return nil
}

// followVIP makes the replication role (and the balancer's mode) follow
// the SIP VIP group: active while this box is its master.
func (a *App) followVIP(ctx context.Context, r *replica.Replica, group string) {
	t := time.NewTicker(vipPoll)
	defer t.Stop()
	warned := false
	for {
		held, known := a.vipMaster(group)
		if !known && !warned {
			a.log.Warn("replication: the failover reports no VIP group; this box stays standby", "group", group)
			warned = true
		}
		if held != r.Active() {
			a.events.Event("replica."+map[bool]string{true: "active", false: "standby"}[held], group,
				map[bool]string{true: "this box holds the SIP VIP: it probes the Cores, expires dialogs and streams them to the peer",
					false: "the peer holds the SIP VIP: this box mirrors its dialogs and Cores"}[held])
		}
		r.SetActive(held)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// vipMaster reports whether this box is master of the VIP group, from
// the failover's status section.
func (a *App) vipMaster(group string) (held, known bool) {
	a.statusMu.Lock()
	fn := a.status["vip"]
	a.statusMu.Unlock()
	if fn == nil {
		return false, false
	}
	st, ok := fn().(failover.Status)
	if !ok {
		return false, false
	}
	for _, g := range st.Groups {
		if g.Name == group {
			return g.State == failover.StateMaster.String(), true
		}
	}
	return false, false
}

// sipGroup is the VIP group whose address the balancer listens on (else
// one named "sip").
func sipGroup(cfg *config.Config) string {
	for _, v := range cfg.VIPs {
		for _, l := range cfg.SIP.Listen {
			_, hp, _ := strings.Cut(l, ":")
			if ap, err := netip.ParseAddrPort(hp); err == nil && ap.Addr() == v.Address.Addr() {
				return v.Name
			}
		}
	}
	for _, v := range cfg.VIPs {
		if v.Name == "sip" {
			return v.Name
		}
	}
	return ""
}
