package testenv

import (
	"fmt"
	"net"
	"testing"
)

func TestFreePorts(t *testing.T) {
	lo, low := portRange()
	if low != ephemeralLow() {
		t.Fatalf("ports drawn up to %d, the ephemeral range starts at %d", low, ephemeralLow())
	}
	seen := map[int]bool{}
	for i := 0; i < 20; i++ {
		base := FreePorts(t, 4)
		if base < lo || base+4 > low {
			t.Fatalf("block %d-%d is not below the ephemeral range (%d)", base, base+3, low)
		}
		for p := base; p < base+4; p++ {
			if seen[p] {
				t.Fatalf("port %d handed out twice", p)
			}
			seen[p] = true
			u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				t.Fatalf("port %d of block %d not bindable: %v", p, base, err)
			}
			u.Close()
		}
	}
}

func TestFreePortSkipsTaken(t *testing.T) {
	// Take ports the way a peer would and check FreePort never returns them.
	var held []net.PacketConn
	taken := map[int]bool{}
	for i := 0; i < 50; i++ {
		p := FreePort(t)
		u, err := net.ListenPacket("udp", fmt.Sprintf(":%d", p))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, u)
		taken[p] = true
	}
	defer func() {
		for _, u := range held {
			u.Close()
		}
	}()
	// Forget what was handed out: only the bind check stands between a
	// new call and the held ports now.
	handed.Lock()
	handed.ports = nil
	handed.Unlock()
	// 2,000 draws over ~12,700 ports hit one of the 50 held with
	// probability 1-e^-7.8: without the check this test fails.
	for i := 0; i < 2000; i++ {
		if p := FreePort(t); taken[p] {
			t.Fatalf("FreePort returned %d, which is bound", p)
		}
	}
}
