package hal

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

var (
	ethBroadcast   = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	ethAllNodes    = net.HardwareAddr{0x33, 0x33, 0x00, 0x00, 0x00, 0x01}
	ip6AllNodes    = netip.MustParseAddr("ff02::1")
	zeroHardware48 = net.HardwareAddr{0, 0, 0, 0, 0, 0}
)

// Announce sends one gratuitous ARP (IPv4: an ARP request with sender and
// target protocol address both ip, to the broadcast address) or one
// unsolicited neighbour advertisement (IPv6: override flag set, to
// ff02::1) for ip from ifname's hardware address. The address need not
// be configured on the interface yet.
func (n *LinuxNetwork) Announce(ifname string, ip netip.Addr) error {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return fmt.Errorf("hal: announce %s on %s: %w", ip, ifname, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return fmt.Errorf("hal: announce %s on %s: not an Ethernet interface", ip, ifname)
	}
	ip = ip.Unmap()
	if ip.Is4() {
		err = sendGARP(ifi, ip)
	} else {
		err = sendUnsolicitedNA(ifi, ip)
	}
	if err != nil {
		return fmt.Errorf("hal: announce %s on %s: %w", ip, ifname, err)
	}
	return nil
}

func sendGARP(ifi *net.Interface, ip netip.Addr) error {
	p, err := arp.NewPacket(arp.OperationRequest, ifi.HardwareAddr, ip, zeroHardware48, ip)
	if err != nil {
		return err
	}
	b, err := p.MarshalBinary()
	if err != nil {
		return err
	}
	c, err := packet.Listen(ifi, packet.Datagram, unix.ETH_P_ARP, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.WriteTo(b, &packet.Addr{HardwareAddr: ethBroadcast})
	return err
}

// neighborAdvert builds the IPv6 packet (header and ICMPv6) of an
// unsolicited neighbour advertisement for target from hw.
func neighborAdvert(hw net.HardwareAddr, target netip.Addr) []byte {
	const icmpLen = 4 + 4 + 16 + 8 // type/code/csum, flags, target, TLLA option
	b := make([]byte, 40+icmpLen)
	b[0] = 6 << 4
	binary.BigEndian.PutUint16(b[4:], icmpLen)
	b[6] = unix.IPPROTO_ICMPV6
	b[7] = 255 // hop limit, as RFC 4861 requires
	src, dst := target.As16(), ip6AllNodes.As16()
	copy(b[8:24], src[:])
	copy(b[24:40], dst[:])
	m := b[40:]
	m[0] = 136  // neighbour advertisement
	m[4] = 0x20 // override; not router, not solicited
	copy(m[8:24], src[:])
	m[24] = 2 // target link-layer address option
	m[25] = 1 // length in 8 octets
	copy(m[26:32], hw)
	binary.BigEndian.PutUint16(m[2:], icmp6Checksum(src, dst, m))
	return b
}

func icmp6Checksum(src, dst [16]byte, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	var l [8]byte
	binary.BigEndian.PutUint32(l[:4], uint32(len(msg)))
	l[7] = unix.IPPROTO_ICMPV6
	add(l[:])
	add(msg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

func sendUnsolicitedNA(ifi *net.Interface, ip netip.Addr) error {
	c, err := packet.Listen(ifi, packet.Datagram, unix.ETH_P_IPV6, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.WriteTo(neighborAdvert(ifi.HardwareAddr, ip), &packet.Addr{HardwareAddr: ethAllNodes})
	return err
}
