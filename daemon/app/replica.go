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

	"github.com/sipedge/sipedge/daemon/balancer"
	"github.com/sipedge/sipedge/daemon/config"
	"github.com/sipedge/sipedge/daemon/replica"
)

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
	// The replication role (and the balancer's mode) follows the SIP VIP
	// group: active while this box is its master.
	a.onVIP(func(g string, master bool) {
		if g != group || master == r.Active() {
			return
		}
		r.SetActive(master)
		if master {
			a.events.Event("replica.active", group, "this box holds the SIP VIP: it probes the Cores, expires dialogs and streams them to the peer")
		} else {
			a.events.Event("replica.standby", group, "the peer holds the SIP VIP: this box mirrors its dialogs and Cores")
		}
	})
	a.add("replica", r.Run)
	return nil
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
