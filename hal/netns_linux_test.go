package hal

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"github.com/sipedge/sipedge/hal/testenv"
)

// The real Linux implementation is tested inside a network namespace the
// test creates, holding one veth pair: the test binary re-executes itself
// inside it (ip netns exec) so every socket lives there.

const childEnv = "SIPEDGE_HAL_NETNS_CHILD"

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func TestLinuxNetworkInNetns(t *testing.T) {
	runChildInNetns(t, "sehal", "va", "vb", "TestNetnsChild", childEnv)
}

// runChildInNetns creates a namespace (prefix + pid) holding one veth
// pair a-b and runs the test child of this binary inside it, with env=1
// so that the child knows it is in place; it fails t if the child fails
// or did not run.
func runChildInNetns(t *testing.T, prefix, a, b, child, env string) {
	t.Helper()
	testenv.MustHaveNetns(t)
	ns := fmt.Sprintf("%s%d", prefix, os.Getpid())
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run(t, "ip", "-n", ns, "link", "add", a, "type", "veth", "peer", "name", b)
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^"+child+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	if err != nil {
		t.Fatalf("child test in netns failed: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: "+child) {
		t.Fatal("child test did not run")
	}
}

// TestNetnsChild runs inside the namespace; it is skipped otherwise.
func TestNetnsChild(t *testing.T) {
	if os.Getenv(childEnv) != "1" {
		t.Skip("run by TestLinuxNetworkInNetns")
	}
	n, err := OpenNetwork()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()

	t.Run("links", func(t *testing.T) {
		st, err := n.Link("va")
		if err != nil {
			t.Fatal(err)
		}
		if st.AdminUp || st.OperUp || len(st.HardwareAddr) != 6 || st.MTU != 1500 {
			t.Fatalf("fresh veth: %+v", st)
		}
		for _, ifn := range []string{"va", "vb", "lo"} {
			if err := n.SetLinkUp(ifn, true); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "va oper up", func() bool { st, _ := n.Link("va"); return st.OperUp })
		if err := n.SetLinkUp("vb", false); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "va oper down when the peer is down", func() bool { st, _ := n.Link("va"); return !st.OperUp && st.AdminUp })
		n.SetLinkUp("vb", true)
		waitFor(t, "va oper up again", func() bool { st, _ := n.Link("va"); return st.OperUp })
		if _, err := n.Link("nosuch0"); err == nil {
			t.Fatal("Link of a missing interface succeeded")
		}
	})

	t.Run("addresses", func(t *testing.T) {
		p4 := netip.MustParsePrefix("192.0.2.10/24")
		p6 := netip.MustParsePrefix("2001:db8::10/64")
		for i := 0; i < 2; i++ {
			for _, p := range []netip.Prefix{p4, p6} {
				if err := n.AddAddress("va", p); err != nil {
					t.Fatalf("add %v (round %d): %v", p, i, err)
				}
			}
		}
		got, err := n.Addresses("va")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(got, p4) || !slices.Contains(got, p6) || got[0] != p4 {
			t.Fatalf("Addresses = %v", got)
		}
		out, _ := exec.Command("ip", "-br", "addr", "show", "va").CombinedOutput()
		if !strings.Contains(string(out), "192.0.2.10/24") {
			t.Fatalf("ip does not see the address: %s", out)
		}
		for i := 0; i < 2; i++ {
			if err := n.DelAddress("va", p4); err != nil {
				t.Fatalf("del (round %d): %v", i, err)
			}
		}
		got, _ = n.Addresses("va")
		if slices.Contains(got, p4) || !slices.Contains(got, p6) {
			t.Fatalf("after delete: %v", got)
		}
	})

	t.Run("garp", func(t *testing.T) {
		va, _ := net.InterfaceByName("va")
		vb, _ := net.InterfaceByName("vb")
		c, err := packet.Listen(vb, packet.Raw, unix.ETH_P_ARP, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		vip := netip.MustParseAddr("192.0.2.20")
		if err := n.Announce("va", vip); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 1500)
		for {
			k, _, err := c.ReadFrom(buf)
			if err != nil {
				t.Fatalf("no gratuitous ARP on the peer: %v", err)
			}
			if k < 14 || !slices.Equal(buf[0:6], ethBroadcast) {
				continue
			}
			var p arp.Packet
			if err := p.UnmarshalBinary(buf[14:k]); err != nil {
				continue
			}
			if p.SenderIP != vip {
				continue
			}
			if p.TargetIP != vip || p.Operation != arp.OperationRequest || !slices.Equal(p.SenderHardwareAddr, va.HardwareAddr) {
				t.Fatalf("not a gratuitous ARP: %+v", p)
			}
			return
		}
	})

	t.Run("unsolicited-na", func(t *testing.T) {
		va, _ := net.InterfaceByName("va")
		vb, _ := net.InterfaceByName("vb")
		c, err := packet.Listen(vb, packet.Raw, unix.ETH_P_IPV6, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		vip := netip.MustParseAddr("2001:db8::20")
		if err := n.Announce("va", vip); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 1500)
		for {
			k, _, err := c.ReadFrom(buf)
			if err != nil {
				t.Fatalf("no neighbour advertisement on the peer: %v", err)
			}
			pk := buf[14:k]
			if k < 14+40+32 || pk[6] != unix.IPPROTO_ICMPV6 || pk[40] != 136 {
				continue
			}
			target, _ := netip.AddrFromSlice(pk[48:64])
			if target != vip {
				continue
			}
			var src, dst [16]byte
			copy(src[:], pk[8:24])
			copy(dst[:], pk[24:40])
			if pk[7] != 255 || pk[44]&0x20 == 0 || pk[44]&0x40 != 0 || !slices.Equal(pk[66:72], va.HardwareAddr) ||
				icmp6Checksum(src, dst, pk[40:40+binary.BigEndian.Uint16(pk[4:6])]) != 0 {
				t.Fatalf("bad neighbour advertisement: % x", pk)
			}
			return
		}
	})

	t.Run("bond-without-driver", func(t *testing.T) {
		// The development kernels have no bonding driver; where one is
		// present this creates a real bond (the QEMU test covers that).
		err := n.CreateBond(BondConfig{Name: "tbond0", Mode: BondActiveBackup, Slaves: []string{"va"}})
		if err == nil {
			st, err := n.Bond("tbond0")
			if err != nil || st.Mode != BondActiveBackup || len(st.Slaves) != 1 {
				t.Fatalf("bond read back: %+v, %v", st, err)
			}
			return
		}
		t.Logf("CreateBond: %v", err)
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
