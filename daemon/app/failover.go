package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"time"

	"github.com/sipedge/sipedge/daemon/config"
	"github.com/sipedge/sipedge/daemon/ctl"
	"github.com/sipedge/sipedge/daemon/failover"
	"github.com/sipedge/sipedge/daemon/history"
	"github.com/sipedge/sipedge/daemon/store"
	"github.com/sipedge/sipedge/hal"
)

// setupFailover starts the heartbeat with the peer and the VIP state
// machines when the config has a cluster: section and vips:, and
// registers `ctl vip`, `ctl vip release GROUP`, `ctl vip takeover GROUP`.
func (a *App) setupFailover(ctx context.Context) error {
	cfg := a.Config()
	if cfg.Cluster == nil || len(cfg.VIPs) == 0 {
		return nil
	}
	if err := a.checkClusterKey(cfg); err != nil {
		return fmt.Errorf("failover: %w", err)
	}
	opt, err := FailoverOptions(cfg)
	if err != nil {
		return err
	}
	n, err := hal.OpenNetwork()
	if err != nil {
		return fmt.Errorf("failover: %w", err)
	}
	a.onStop(func() { n.Close() })
	beat := a.live.Register("failover", 3*opt.Interval+2e9)
	opt.Logger = a.log.With("subsystem", "failover")
	opt.Events = failoverEvents{a}
	opt.Metrics = failover.NewMetrics(a.metrics())
	opt.Beat = beat.Beat
	opt.Persist = failoverPersist{a}
	opt.OnPlacement = a.placementAlarm
	m, err := failover.New(opt, n, n)
	if err != nil {
		return err
	}
	a.add("failover", m.Run)
	a.setupPair(m, opt.Interval)
	a.addStatus("vip", func() any { return m.Status() })
	a.onReload("failover", func(c *config.Config) error {
		if !reflect.DeepEqual(c.Cluster, cfg.Cluster) || !reflect.DeepEqual(c.VIPs, cfg.VIPs) {
			return errors.New("cluster: and vips: changes take effect at the next restart")
		}
		return nil
	})
	group := func(p json.RawMessage) (string, error) {
		var q struct {
			Group string `json:"group"`
		}
		if err := ctl.DecodeParams(p, &q); err != nil {
			return "", err
		}
		if q.Group == "" {
			return "", ctl.Errorf(ctl.CodeBadRequest, "no group given")
		}
		return q.Group, nil
	}
	ctlErr := func(err error) error {
		if errors.Is(err, failover.ErrNoGroup) {
			return ctl.Errorf(ctl.CodeNotFound, "%v", err)
		}
		return ctl.Errorf(ctl.CodeConflict, "%v", err)
	}
	a.ctl.Handle("vip", "VIP groups: state, holder, peer last heard, time to takeover", func(context.Context, json.RawMessage) (any, error) {
		return m.Status(), nil
	})
	a.ctl.Handle(failover.MethodVIPCheck, "run the VIP placement check now (the peer on the VIP's layer-2 segment): the groups with their findings", func(ctx context.Context, _ json.RawMessage) (any, error) {
		m.CheckPlacement(ctx)
		return m.Status(), nil
	})
	a.ctl.Handle("vip.release", "give a VIP group to the peer for maintenance: {group}", func(_ context.Context, p json.RawMessage) (any, error) {
		g, err := group(p)
		if err != nil {
			return nil, err
		}
		if err := m.Release(g); err != nil {
			return nil, ctlErr(err)
		}
		return m.Status(), nil
	})
	a.ctl.Handle("vip.auto", "end an operator release or takeover of a VIP group: {group}", func(_ context.Context, p json.RawMessage) (any, error) {
		g, err := group(p)
		if err != nil {
			return nil, err
		}
		if err := m.Auto(g); err != nil {
			return nil, ctlErr(err)
		}
		return m.Status(), nil
	})
	a.ctl.Handle("vip.takeover", "take a VIP group from the peer at once: {group}", func(_ context.Context, p json.RawMessage) (any, error) {
		g, err := group(p)
		if err != nil {
			return nil, err
		}
		if err := m.Takeover(g); err != nil {
			return nil, ctlErr(err)
		}
		return m.Status(), nil
	})
	return nil
}

// failoverPersist keeps the failover's operator pins in the store's
// runtime bucket (operator changes: a factory reset clears them) and the
// relay's original sysctl values in its state bucket.
type failoverPersist struct{ a *App }

func (p failoverPersist) bucket(key string) store.Bucket {
	if key == failover.PersistPins {
		return store.Runtime
	}
	return store.State
}

func (p failoverPersist) Load(key string, v any) (bool, error) {
	return p.a.store.Get(p.bucket(key), key, v)
}

func (p failoverPersist) Save(key string, v any) error {
	return p.a.store.Put(p.bucket(key), key, v)
}

type failoverEvents struct{ a *App }

func (e failoverEvents) Record(ev failover.Event) {
	msg := fmt.Sprintf("%s -> %s: %s", ev.From, ev.To, ev.Reason)
	if ev.From == 0 {
		msg = fmt.Sprintf("%s: %s", ev.To, ev.Reason)
	}
	e.a.events.Event("vip."+ev.To.String(), ev.Group, msg)
	e.a.hist.Mark(history.Event{Time: ev.Time, Group: ev.Group, State: ev.To.String(), Text: msg})
	if (ev.From == failover.StateMaster) != (ev.To == failover.StateMaster) {
		for _, fn := range e.a.vipHooks {
			fn(ev.Group, ev.To == failover.StateMaster)
		}
	}
}

// FailoverOptions converts the cluster: and vips: sections to the
// failover package's options (without logger, events and metrics).
func FailoverOptions(cfg *config.Config) (failover.Options, error) {
	cl := cfg.Cluster
	key, _, err := config.ReadClusterKey(cl.KeyFile) // judged by checkClusterKey
	if err != nil {
		return failover.Options{}, fmt.Errorf("failover: %w", err)
	}
	opt := failover.Options{
		Node:     cfg.Node.Name,
		Listen:   cl.Listen,
		Peers:    []string{cl.Peer},
		Key:      key,
		Interval: cl.Interval.D(),
		RelayFor: zeroIsNone(cl.HandoverRelay.D()),
	}
	for _, v := range cfg.VIPs {
		g := failover.GroupOptions{
			Name: v.Name, Address: v.Address, Interface: v.Interface,
			Role: failover.Role(v.Role), Priority: v.Priority,
			Deadtime: v.Deadtime.D(), Initdead: v.Initdead.D(),
			Failback: v.Failback.On(), StableFor: zeroIsNone(v.Failback.StableFor.D()),
			GARPCount: v.GARP.Count, GARPRepeatAfter: v.GARP.RepeatAfter.D(),
			Notify: v.Notify, PeerAddress: v.PeerAddress,
		}
		if v.Follows != nil {
			g.Follows = v.Follows.Group
		}
		for _, t := range v.Track {
			switch {
			case t.TCP != "":
				g.Track = append(g.Track, failover.TrackOptions{Kind: failover.CheckTCP, Target: t.TCP, Weight: t.Weight, Fall: t.Fall, Rise: t.Rise})
			case t.Link != "":
				g.Track = append(g.Track, failover.TrackOptions{Kind: failover.CheckLink, Target: t.Link, Weight: t.Weight, Fall: t.Fall, Rise: t.Rise})
			case t.MySQL != nil:
				tr, err := mysqlTrack(t, cl.Interval.D())
				if err != nil {
					return opt, fmt.Errorf("failover: vip %s: %w", v.Name, err)
				}
				g.Track = append(g.Track, tr)
			case t.SIPOptions != "":
				target := t.SIPOptions
				if target == "local" {
					if target, err = localSIP(cfg); err != nil {
						return opt, fmt.Errorf("failover: vip %s: track sip_options local: %w", v.Name, err)
					}
				}
				g.Track = append(g.Track, failover.TrackOptions{Kind: failover.CheckSIPOptions, Target: target, Weight: t.Weight, Fall: t.Fall, Rise: t.Rise})
			}
		}
		opt.Groups = append(opt.Groups, g)
	}
	return opt, nil
}

// zeroIsNone maps a config duration (defaults already filled, so 0 was
// written as 0: "no wait") to the failover package's convention, where
// 0 means its default and a negative value none.
func zeroIsNone(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// localSIP is where this box's own balancer answers OPTIONS for a
// `sip_options: local` check: loopback at the port of the first UDP
// listener. The listeners are usually on the VIP, which only the holder
// has (probing the VIP from the backup would reach the peer's balancer),
// so the balancer also listens there when needed (healthListener).
func localSIP(cfg *config.Config) (string, error) {
	if cfg.SIP == nil {
		return "", errors.New("no sip: section")
	}
	for _, l := range cfg.SIP.Listen {
		rest, ok := strings.CutPrefix(l, "udp:")
		if !ok {
			continue
		}
		_, port, err := net.SplitHostPort(rest)
		if err != nil {
			return "", fmt.Errorf("sip.listen %q: %w", l, err)
		}
		return net.JoinHostPort("127.0.0.1", port), nil
	}
	return "", errors.New("no udp listener in sip.listen")
}

// healthListener is the loopback listener ("udp:127.0.0.1:PORT") the
// balancer must add so that a VIP group's `sip_options: local` check
// reaches this box's own balancer, or "" when no group tracks it or a
// configured listener (127.0.0.1 or the wildcard, same port) already
// answers there.
func healthListener(cfg *config.Config) string {
	tracked := false
	for _, v := range cfg.VIPs {
		for _, t := range v.Track {
			tracked = tracked || t.SIPOptions == "local"
		}
	}
	if !tracked {
		return ""
	}
	target, err := localSIP(cfg)
	if err != nil {
		return ""
	}
	_, port, _ := net.SplitHostPort(target)
	for _, l := range cfg.SIP.Listen {
		rest, ok := strings.CutPrefix(l, "udp:")
		if !ok {
			continue
		}
		host, p, err := net.SplitHostPort(rest)
		if err != nil || p != port {
			continue
		}
		if ip, err := netip.ParseAddr(host); err == nil && (ip.IsUnspecified() || ip == netip.MustParseAddr("127.0.0.1")) {
			return ""
		}
	}
	return "udp:" + target
}
