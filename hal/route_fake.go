package hal

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
)

var (
	_ Routes     = (*Fake)(nil)
	_ LinkLister = (*Fake)(nil)
)

// ErrNetUnreachable is what the fake answers, as the kernel does
// (ENETUNREACH), for a gateway that no address of the interface reaches.
var ErrNetUnreachable = errors.New("network is unreachable")

// SetDefaultRoute implements Routes. As the kernel, it wants the
// interface up and the gateway inside one of its addresses' prefixes.
func (f *Fake) SetDefaultRoute(ifname string, gw netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("SetDefaultRoute"); err != nil {
		return err
	}
	if !gw.IsValid() {
		return fmt.Errorf("hal: default route via %s: no gateway", ifname)
	}
	l, err := f.link(ifname)
	if err != nil {
		return err
	}
	onLink := false
	for _, p := range l.addrs {
		onLink = onLink || p.Masked().Contains(gw.Unmap())
	}
	if !l.st.AdminUp || !onLink {
		return fmt.Errorf("hal: default route via %s dev %s: %w", gw, ifname, ErrNetUnreachable)
	}
	if f.routes == nil {
		f.routes = map[bool]Route{}
	}
	f.routes[gw.Unmap().Is6()] = Route{Interface: ifname, Gateway: gw.Unmap()}
	return nil
}

// DelDefaultRoute implements Routes.
func (f *Fake) DelDefaultRoute(v6 bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("DelDefaultRoute"); err != nil {
		return err
	}
	delete(f.routes, v6)
	return nil
}

// DefaultRoutes implements Routes.
func (f *Fake) DefaultRoutes() ([]Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("DefaultRoutes"); err != nil {
		return nil, err
	}
	var out []Route
	for _, v6 := range []bool{false, true} {
		if r, ok := f.routes[v6]; ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// ListLinks implements LinkLister.
func (f *Fake) ListLinks() ([]LinkState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("ListLinks"); err != nil {
		return nil, err
	}
	out := make([]LinkState, 0, len(f.links))
	for _, l := range f.links {
		out = append(out, f.state(l))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
