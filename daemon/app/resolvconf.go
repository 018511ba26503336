package app

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/sipedge/sipedge/daemon/config"
	"github.com/sipedge/sipedge/daemon/resolve"
)

// The image's /etc/resolv.conf. In the appliance (under sipedge's PID 1)
// the daemon writes network.dns there at start and at each reload, so
// that the image names one set of DNS servers; the Cores' resolver
// (daemon/resolve) is given network.dns itself, and names from the wire
// are never resolved. On a development machine the host's file is left
// alone. resolv.conf has no port: a server given with a port other than
// 53 stays the resolver's, left out of the file with a warning. With no
// network.dns the file says so and names no server.

// resolvConfPath is the image's resolver file (a variable for tests).
var resolvConfPath = "/etc/resolv.conf"

// renderResolvConf is the file for servers, and the servers it cannot
// name (a port other than 53).
func renderResolvConf(servers []netip.AddrPort) (text []byte, skipped []netip.AddrPort) {
	var b bytes.Buffer
	b.WriteString("# Written by sipedge from network.dns; edit the configuration, not this file.\n")
	if len(servers) == 0 {
		b.WriteString("# network.dns is empty: no DNS server.\n")
	}
	for _, s := range servers {
		if s.Port() != config.DefaultDNSPort {
			skipped = append(skipped, s)
			continue
		}
		fmt.Fprintf(&b, "nameserver %s\n", s.Addr().Unmap())
	}
	return b.Bytes(), skipped
}

// writeResolvConf replaces path with the file for servers, atomically
// (a temporary file beside it, renamed).
func writeResolvConf(path string, servers []netip.AddrPort) ([]netip.AddrPort, error) {
	text, skipped := renderResolvConf(servers)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".resolv.conf-*")
	if err != nil {
		return skipped, fmt.Errorf("resolv.conf: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err = tmp.Write(text); err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return skipped, fmt.Errorf("resolv.conf: write %s: %w", path, err)
	}
	return skipped, nil
}

// setupResolvConf writes the image's resolv.conf now and at each reload,
// in the appliance only.
func (a *App) setupResolvConf() {
	if !a.underInit() {
		return
	}
	apply := func(c *config.Config) error {
		skipped, err := writeResolvConf(resolvConfPath, c.Network.DNSServers())
		for _, s := range skipped {
			a.log.Warn("resolv.conf: a DNS server with a port other than 53 is used by the Cores' resolver only", "server", s)
		}
		if err != nil {
			a.log.Error("network.dns not written to the image's resolv.conf", "err", err)
		}
		return nil // the Cores' resolver has the servers whatever the file
	}
	apply(a.Config())
	a.onReload("resolv.conf", apply)
}

// DNSView is network.dns and what the image's resolv.conf names (read
// back), in ctl network.
type DNSView struct {
	Servers    []string `json:"servers"`
	ResolvConf string   `json:"resolv_conf,omitempty"` // the file, when this daemon writes it
	Written    []string `json:"written,omitempty"`     // its nameservers, read back (resolve.ServersFromFile)
	Error      string   `json:"error,omitempty"`
}

// dnsStatus is the DNS part of ctl network.
func (a *App) dnsStatus() *DNSView {
	v := &DNSView{Servers: []string{}}
	for _, s := range a.Config().Network.DNSServers() {
		v.Servers = append(v.Servers, s.String())
	}
	if !a.underInit() {
		return v
	}
	v.ResolvConf = resolvConfPath
	written, err := resolve.ServersFromFile(resolvConfPath)
	if err != nil && len(v.Servers) > 0 {
		v.Error = err.Error() // with none configured, a file naming none is right
	}
	for _, s := range written {
		v.Written = append(v.Written, s.Addr().String()) // the file has no port
	}
	return v
}
