package hal

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const arpChildEnv = "SIPEDGE_HAL_ARP_CHILD"

// TestARPProbeInNetns runs TestARPProbeChild in a namespace holding the
// veth pair k18a-k18b.
func TestARPProbeInNetns(t *testing.T) {
	runChildInNetns(t, "k18h", "k18a", "k18b", "TestARPProbeChild", arpChildEnv)
}

// TestARPProbeChild (issue 18 item 2, the placement check's HAL): an RFC
// 5227 probe from k18a is answered for k18b's address, with k18b's MAC,
// and teaches k18b's side nothing (no neighbour entry); an address
// nobody has gets ErrNoAnswer at the deadline; a gratuitous ARP sent on
// k18b is heard on k18a, one from k18a itself is not.
func TestARPProbeChild(t *testing.T) {
	if os.Getenv(arpChildEnv) != "1" {
		t.Skip("runs inside the namespace made by TestARPProbeInNetns")
	}
	for _, c := range [][]string{
		{"ip", "addr", "add", "192.0.2.97/27", "dev", "k18a"},
		{"ip", "addr", "add", "192.0.2.98/27", "dev", "k18b"},
		{"ip", "link", "set", "k18a", "up"},
		{"ip", "link", "set", "k18b", "up"},
	} {
		run(t, c...)
	}
	n, err := OpenNetwork()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	b, _ := net.InterfaceByName("k18b")
	waitFor(t, "k18b up", func() bool {
		st, err := n.Link("k18b")
		return err == nil && st.OperUp
	})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	mac, err := n.ProbeARP(ctx, "k18a", netip.MustParseAddr("192.0.2.98"))
	cancel()
	if err != nil || mac.String() != b.HardwareAddr.String() {
		t.Fatalf("probe for 192.0.2.98: %v %v, want k18b's MAC %v", mac, err, b.HardwareAddr)
	}
	out, _ := exec.Command("ip", "neigh", "show", "dev", "k18b").CombinedOutput()
	if strings.Contains(string(out), "192.0.2.97") {
		t.Errorf("the probe taught k18b's side k18a's address:\n%s", out)
	}

	start := time.Now()
	ctx, cancel = context.WithTimeout(context.Background(), 700*time.Millisecond)
	_, err = n.ProbeARP(ctx, "k18a", netip.MustParseAddr("192.0.2.99"))
	cancel()
	if !errors.Is(err, ErrNoAnswer) || time.Since(start) > 5*time.Second {
		t.Errorf("probe for a free address: %v after %v, want ErrNoAnswer at the deadline", err, time.Since(start))
	}

	vip := netip.MustParseAddr("192.0.2.110")
	heard := make(chan net.HardwareAddr, 4)
	wctx, wcancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.WatchGARP(wctx, "k18a", vip, func(m net.HardwareAddr) { heard <- m }) }()
	time.Sleep(200 * time.Millisecond) // the watcher's socket is open
	if err := n.Announce("k18a", vip); err != nil {
		t.Fatal(err)
	}
	if err := n.Announce("k18b", vip); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-heard:
		if m.String() != b.HardwareAddr.String() {
			t.Errorf("heard a gratuitous ARP from %v, want only k18b's (%v)", m, b.HardwareAddr)
		}
	case <-time.After(3 * time.Second):
		t.Error("k18b's gratuitous ARP not heard on k18a")
	}
	wcancel()
	if err := <-done; err != nil {
		t.Errorf("WatchGARP: %v", err)
	}
}
