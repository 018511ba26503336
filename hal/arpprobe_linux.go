package hal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

var _ ARPProber = (*LinuxNetwork)(nil)

// probeEvery spaces the probes of one ProbeARP (RFC 5227 asks for 1-2 s
// between probes when claiming an address; this only asks who is
// there, within the caller's deadline).
const probeEvery = 300 * time.Millisecond

// arpMTU bounds what is read: an ARP packet for Ethernet/IPv4 is 28
// bytes; anything longer is cut, nothing is trusted beyond it.
const arpMTU = 128

// ProbeARP implements ARPProber with an AF_PACKET socket on ifname.
func (n *LinuxNetwork) ProbeARP(ctx context.Context, ifname string, target netip.Addr) (net.HardwareAddr, error) {
	ifi, c, err := arpSocket(ifname)
	if err != nil {
		return nil, fmt.Errorf("hal: arp probe %s on %s: %w", target, ifname, err)
	}
	defer c.Close()
	target = target.Unmap()
	if !target.Is4() {
		return nil, fmt.Errorf("hal: arp probe %s: not IPv4", target)
	}
	p, err := arp.NewPacket(arp.OperationRequest, ifi.HardwareAddr, netip.IPv4Unspecified(), zeroHardware48, target)
	if err != nil {
		return nil, fmt.Errorf("hal: arp probe %s: %w", target, err)
	}
	probe, err := p.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("hal: arp probe %s: %w", target, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, arpMTU)
	next := time.Now()
	for ctx.Err() == nil {
		if !time.Now().Before(next) {
			if _, err := c.WriteTo(probe, &packet.Addr{HardwareAddr: ethBroadcast}); err != nil {
				return nil, fmt.Errorf("hal: arp probe %s on %s: send: %w", target, ifname, err)
			}
			next = time.Now().Add(probeEvery)
		}
		_ = c.SetReadDeadline(next)
		if ctx.Err() != nil {
			break
		}
		k, _, err := c.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return nil, fmt.Errorf("hal: arp probe %s on %s: read: %w", target, ifname, err)
		}
		var in arp.Packet
		if in.UnmarshalBinary(buf[:k]) != nil || in.SenderIP != target || bytes.Equal(in.SenderHardwareAddr, ifi.HardwareAddr) {
			continue
		}
		// The answer to our probe, or the target announcing itself.
		return in.SenderHardwareAddr, nil
	}
	return nil, fmt.Errorf("hal: arp probe %s on %s: %w", target, ifname, ErrNoAnswer)
}

// WatchGARP implements ARPProber.
func (n *LinuxNetwork) WatchGARP(ctx context.Context, ifname string, ip netip.Addr, fn func(net.HardwareAddr)) error {
	ifi, c, err := arpSocket(ifname)
	if err != nil {
		return fmt.Errorf("hal: watch gratuitous arp for %s on %s: %w", ip, ifname, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Now()) })
	defer stop()
	ip = ip.Unmap()
	buf := make([]byte, arpMTU)
	for {
		k, _, err := c.ReadFrom(buf)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("hal: watch gratuitous arp on %s: %w", ifname, err)
		}
		var in arp.Packet
		if in.UnmarshalBinary(buf[:k]) != nil || in.SenderIP != ip || in.TargetIP != ip || bytes.Equal(in.SenderHardwareAddr, ifi.HardwareAddr) {
			continue
		}
		fn(append(net.HardwareAddr(nil), in.SenderHardwareAddr...))
	}
}

func arpSocket(ifname string) (*net.Interface, *packet.Conn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, nil, err
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, nil, errors.New("not an Ethernet interface")
	}
	c, err := packet.Listen(ifi, packet.Datagram, unix.ETH_P_ARP, nil)
	if err != nil {
		return nil, nil, err
	}
	return ifi, c, nil
}
