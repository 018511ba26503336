package hal

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"

	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"
)

var (
	_ Routes     = (*LinuxNetwork)(nil)
	_ LinkLister = (*LinuxNetwork)(nil)
)

func family(v6 bool) uint8 {
	if v6 {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

// SetDefaultRoute replaces the main table's default route of gw's family
// (RTM_NEWROUTE with NLM_F_CREATE|NLM_F_REPLACE, as `ip route replace
// default via GW dev IF`).
func (n *LinuxNetwork) SetDefaultRoute(ifname string, gw netip.Addr) error {
	if !gw.IsValid() {
		return fmt.Errorf("hal: default route via %s: no gateway", ifname)
	}
	gw = gw.Unmap()
	n.mu.Lock()
	defer n.mu.Unlock()
	l, err := n.linkByName(ifname)
	if err != nil {
		return fmt.Errorf("hal: default route via %s: %w", gw, err)
	}
	err = n.conn.Route.Replace(&rtnetlink.RouteMessage{
		Family:   family(gw.Is6()),
		Table:    unix.RT_TABLE_MAIN,
		Protocol: unix.RTPROT_STATIC,
		Scope:    unix.RT_SCOPE_UNIVERSE,
		Type:     unix.RTN_UNICAST,
		Attributes: rtnetlink.RouteAttributes{
			Gateway:  net.IP(gw.AsSlice()),
			OutIface: l.Index,
			Table:    unix.RT_TABLE_MAIN,
		},
	})
	if err != nil {
		return fmt.Errorf("hal: default route via %s dev %s: %w", gw, ifname, err)
	}
	return nil
}

// DelDefaultRoute deletes the main table's default route of a family.
func (n *LinuxNetwork) DelDefaultRoute(v6 bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	err := n.conn.Route.Delete(&rtnetlink.RouteMessage{
		Family: family(v6),
		Table:  unix.RT_TABLE_MAIN,
		Scope:  unix.RT_SCOPE_NOWHERE,
		Attributes: rtnetlink.RouteAttributes{
			Table: unix.RT_TABLE_MAIN,
		},
	})
	if err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("hal: delete default route: %w", err)
	}
	return nil
}

// DefaultRoutes lists the default routes (destination length 0) of the
// main table, IPv4 then IPv6.
func (n *LinuxNetwork) DefaultRoutes() ([]Route, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	links, err := n.conn.Link.List()
	if err != nil {
		return nil, fmt.Errorf("hal: list links: %w", err)
	}
	names := map[uint32]string{}
	for _, l := range links {
		if l.Attributes != nil {
			names[l.Index] = l.Attributes.Name
		}
	}
	rs, err := n.conn.Route.List() // AF_UNSPEC: every family
	if err != nil {
		return nil, fmt.Errorf("hal: list routes: %w", err)
	}
	var out []Route
	for _, r := range rs {
		if r.Family != unix.AF_INET && r.Family != unix.AF_INET6 || r.DstLength != 0 || r.Type != unix.RTN_UNICAST {
			continue
		}
		table := uint32(r.Table)
		if r.Attributes.Table != 0 {
			table = r.Attributes.Table
		}
		if table != unix.RT_TABLE_MAIN {
			continue
		}
		gw, _ := netip.AddrFromSlice(r.Attributes.Gateway)
		out = append(out, Route{Interface: names[r.Attributes.OutIface], Gateway: gw.Unmap()})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Gateway.Is4() && !out[j].Gateway.Is4() })
	return out, nil
}

// ListLinks lists every interface, sorted by name.
func (n *LinuxNetwork) ListLinks() ([]LinkState, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	links, err := n.conn.Link.List()
	if err != nil {
		return nil, fmt.Errorf("hal: list links: %w", err)
	}
	out := make([]LinkState, 0, len(links))
	for _, l := range links {
		if l.Attributes != nil {
			out = append(out, linkState(l))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
