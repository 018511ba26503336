package hal

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

var _ Relayer = (*LinuxNetwork)(nil)

// Sysctl reads /proc/sys/name in the process's network namespace.
func (n *LinuxNetwork) Sysctl(name string) (string, error) {
	if err := checkSysctlName(name); err != nil {
		return "", err
	}
	b, err := os.ReadFile("/proc/sys/" + name)
	if err != nil {
		return "", fmt.Errorf("hal: sysctl: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// SetSysctl writes /proc/sys/name.
func (n *LinuxNetwork) SetSysctl(name, value string) error {
	if err := checkSysctlName(name); err != nil {
		return err
	}
	f, err := os.OpenFile("/proc/sys/"+name, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("hal: sysctl: %w", err)
	}
	_, werr := f.WriteString(value)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("hal: sysctl %s=%s: %w", name, value, err)
	}
	return nil
}

// relayRules returns the two rule messages for ifname and addr: routing
// to addr through the main table, and the drop rule.
func relayRules(ifname string, addr netip.Addr) (to, drop *rtnetlink.RuleMessage) {
	ip := net.IP(addr.Unmap().AsSlice())
	iif := ifname
	prio, dprio := uint32(RelayRulePriority), uint32(RelayDropRulePriority)
	main := uint32(unix.RT_TABLE_MAIN)
	to = &rtnetlink.RuleMessage{
		Family: unix.AF_INET, DstLength: 32, Table: unix.RT_TABLE_MAIN, Action: unix.FR_ACT_TO_TBL,
		Attributes: &rtnetlink.RuleAttributes{Priority: &prio, IIFName: &iif, Dst: &ip, Table: &main},
	}
	drop = &rtnetlink.RuleMessage{
		Family: unix.AF_INET, Action: unix.FR_ACT_BLACKHOLE,
		Attributes: &rtnetlink.RuleAttributes{Priority: &dprio, IIFName: &iif},
	}
	return to, drop
}

// AddRelayRules adds "iif IF to ADDR lookup main" and "iif IF blackhole".
func (n *LinuxNetwork) AddRelayRules(ifname string, addr netip.Addr) error {
	if !addr.Unmap().Is4() {
		return fmt.Errorf("hal: relay rules for %s: %w (IPv4 only)", addr, ErrUnsupported)
	}
	to, drop := relayRules(ifname, addr)
	n.mu.Lock()
	defer n.mu.Unlock()
	// The drop rule first: the box never forwards anything else, even
	// for the instant between the two adds.
	for _, r := range []*rtnetlink.RuleMessage{drop, to} {
		if err := n.conn.Rule.Add(r); err != nil && !errors.Is(err, unix.EEXIST) && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("hal: add relay rule on %s for %s: %w", ifname, addr, err)
		}
	}
	return nil
}

// DelRelayRules removes addr's rule and, if last, the drop rule.
func (n *LinuxNetwork) DelRelayRules(ifname string, addr netip.Addr, last bool) (bool, error) {
	if !addr.Unmap().Is4() {
		return false, nil
	}
	to, drop := relayRules(ifname, addr)
	rules := []*rtnetlink.RuleMessage{to}
	if last {
		rules = append(rules, drop)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	existed := false
	var errs []error
	for _, r := range rules {
		err := n.conn.Rule.Delete(r)
		switch {
		case err == nil:
			existed = true
		case errors.Is(err, unix.ENOENT) || errors.Is(err, os.ErrNotExist):
		default:
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return existed, fmt.Errorf("hal: delete relay rules on %s for %s: %w", ifname, addr, err)
	}
	return existed, nil
}

// ForgetNeighbor deletes addr's neighbour entry on ifname.
func (n *LinuxNetwork) ForgetNeighbor(ifname string, addr netip.Addr) error {
	addr = addr.Unmap()
	fam := uint16(unix.AF_INET)
	if addr.Is6() {
		fam = unix.AF_INET6
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	l, err := n.linkByName(ifname)
	if err != nil {
		return fmt.Errorf("hal: forget neighbour %s: %w", addr, err)
	}
	// NeighService.Delete ignores its argument: send the request here.
	req := &rtnetlink.NeighMessage{Family: fam, Index: l.Index,
		Attributes: &rtnetlink.NeighAttributes{Address: net.IP(addr.AsSlice())}}
	_, err = n.conn.Execute(req, unix.RTM_DELNEIGH, netlink.Request|netlink.Acknowledge)
	if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("hal: forget neighbour %s on %s: %w", addr, ifname, err)
	}
	return nil
}
