package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/sipedge/sipedge/daemon/balancer"
	"github.com/sipedge/sipedge/daemon/config"
	"github.com/sipedge/sipedge/daemon/ctl"
	"github.com/sipedge/sipedge/daemon/edge"
	"github.com/sipedge/sipedge/daemon/store"
)

// banKey is where the ban table lives in the store (State bucket: bans
// are runtime state, not an operator's configuration change, and a
// factory reset of the runtime changes leaves them).
const banKey = "edge.bans"

// BansStatus is the answer of `ctl bans` and `ctl bans.clear`.
type BansStatus struct {
	Bans    []edge.Ban        `json:"bans"`
	Cleared *int              `json:"cleared,omitempty"`
	Policy  map[string]any    `json:"policy"`
	Counts  map[string]uint64 `json:"counts"`
	// SaveError is the last failure to write the bans to the store.
	SaveError string `json:"save_error,omitempty"`
}

// EdgeOptions converts the security: section to the edge's options.
func EdgeOptions(cfg *config.Config) edge.Options {
	s := cfg.Security
	o := edge.Options{
		Untrusted:     s.Untrusted,
		FloodRequests: s.Flood.Requests,
		FloodPer:      s.Flood.Per.D(),
		FloodBan:      s.Flood.Ban.D(),
		MaxSources:    s.Flood.Sources,
		Scanners:      s.Scanners,
	}
	for _, t := range s.Trusted {
		o.Trusted = append(o.Trusted, edge.Rule{Transport: t.Transport, Prefix: t.Prefix})
	}
	return o
}

type banStore struct{ st *store.Store }

func (b banStore) LoadBans() ([]edge.Ban, error) {
	var bans []edge.Ban
	_, err := b.st.Get(store.State, banKey, &bans)
	return bans, err
}

func (b banStore) SaveBans(bans []edge.Ban) error { return b.st.Put(store.State, banKey, bans) }

// setupEdge builds the edge screen from the security: section and hangs
// it on the balancer's options (the balancer's setup calls it: the
// screen exists only in front of a balancer). It registers `ctl bans`
// and `bans.clear`, the "edge" status section, the edge metrics, the
// reload hook, and a loop that expires and saves bans and keeps the
// Cores' addresses exempt.
func (a *App) setupEdge(opt *balancer.Options) error {
	cfg := a.Config()
	eo := EdgeOptions(cfg)
	eo.Store = banStore{a.store}
	eo.Logger = a.log.With("subsystem", "edge")
	eo.OnBan = func(b edge.Ban) {
		a.events.Event("edge.ban", b.Source, fmt.Sprintf("%s banned until %s: more than %d requests per %s",
			b.Source, b.Until.Format(time.RFC3339), cfg.Security.Flood.Requests, cfg.Security.Flood.Per))
	}
	g, err := edge.New(eo)
	if err != nil {
		return err
	}
	opt.Screen = func(src netip.AddrPort, transport string, data []byte) balancer.Verdict {
		v := g.Screen(src, transport, data)
		switch v.Action {
		case edge.Drop:
			return balancer.Verdict{Drop: true}
		case edge.Reject:
			return balancer.Verdict{Code: v.Code, Reason: v.Reason}
		}
		return balancer.Verdict{Trusted: v.Trusted}
	}
	exempt := func(cs []balancer.CoreConfig) {
		var addrs []netip.Addr
		for _, c := range cs {
			s := c.Address
			if _, rest, ok := cutTransport(s); ok {
				s = rest
			}
			if ap, err := netip.ParseAddrPort(s); err == nil {
				addrs = append(addrs, ap.Addr())
			} else if ad, err := netip.ParseAddr(s); err == nil {
				addrs = append(addrs, ad)
			}
		}
		g.SetExempt(addrs)
	}
	exempt(opt.Cores)

	coll := edge.NewCollector(g)
	if err := a.metrics().Register(coll); err != nil {
		return fmt.Errorf("edge metrics: %w", err)
	}
	a.onStop(func() { a.metrics().Unregister(coll) })

	status := func(cleared *int) BansStatus {
		return BansStatus{Bans: g.Bans(), Cleared: cleared, Policy: g.Policy(), Counts: g.Counts(), SaveError: g.SaveError()}
	}
	a.addStatus("edge", func() any {
		s := status(nil)
		s.Bans = nil
		return s
	})
	a.ctl.Handle("bans", "sources banned at the edge (flood), with the policy and counters", func(context.Context, json.RawMessage) (any, error) {
		return status(nil), nil
	})
	a.ctl.Handle("bans.clear", "lift the ban on a source, or every ban: {source} (empty: all)", func(_ context.Context, p json.RawMessage) (any, error) {
		var q struct {
			Source string `json:"source"`
		}
		if err := ctl.DecodeParams(p, &q); err != nil {
			return nil, err
		}
		n, err := g.Clear(q.Source)
		var se *edge.SourceError
		switch {
		case asSourceError(err, &se):
			return nil, ctl.Errorf(ctl.CodeBadRequest, "%v", err)
		case err != nil:
			return nil, ctl.Errorf(ctl.CodeConflict, "lifted %d ban(s) but not saved (they return at restart): %v", n, err)
		case q.Source != "" && n == 0:
			return nil, ctl.Errorf(ctl.CodeNotFound, "%s is not banned", q.Source)
		}
		who := q.Source
		if who == "" {
			who = "all"
		}
		a.events.Event("edge.unban", who, fmt.Sprintf("%d ban(s) lifted by the operator (%s)", n, who))
		return status(&n), nil
	})
	a.onReload("edge", func(c *config.Config) error {
		if err := g.Update(EdgeOptions(c)); err != nil {
			return err
		}
		cfg = c
		return nil
	})
	a.add("edge", func(ctx context.Context) error {
		// Keep the Cores (including those added at runtime) exempt.
		go func() {
			t := time.NewTicker(5 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				if res, err := a.ctl.Call(ctx, "cores", nil); err == nil {
					if st, ok := res.(CoresStatus); ok {
						cs := make([]balancer.CoreConfig, len(st.Cores))
						for i, c := range st.Cores {
							cs[i].Address = c.Address
						}
						exempt(cs)
					}
				}
			}
		}()
		return g.Run(ctx)
	})
	return nil
}

func cutTransport(s string) (string, string, bool) {
	for _, p := range []string{"udp:", "tcp:", "tls:", "UDP:", "TCP:", "TLS:"} {
		if len(s) > len(p) && s[:len(p)] == p {
			return p[:3], s[len(p):], true
		}
	}
	return "", s, false
}

func asSourceError(err error, target **edge.SourceError) bool { return errors.As(err, target) }
