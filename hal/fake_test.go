package hal

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestFakeAddresses(t *testing.T) {
	f := NewFake("eth0")
	p := netip.MustParsePrefix("192.0.2.10/24")
	for i := 0; i < 2; i++ { // idempotent
		if err := f.AddAddress("eth0", p); err != nil {
			t.Fatal(err)
		}
	}
	got, err := f.Addresses("eth0")
	if err != nil || !slices.Equal(got, []netip.Prefix{p}) {
		t.Fatalf("Addresses = %v, %v; want [%v]", got, err, p)
	}
	for i := 0; i < 2; i++ {
		if err := f.DelAddress("eth0", p); err != nil {
			t.Fatal(err)
		}
	}
	if f.HasAddress("eth0", p) {
		t.Fatal("address still present after DelAddress")
	}
	if err := f.AddAddress("nope", p); err == nil {
		t.Fatal("AddAddress on a missing interface succeeded")
	}
	boom := errors.New("boom")
	f.FailNext("AddAddress", boom)
	if err := f.AddAddress("eth0", p); !errors.Is(err, boom) {
		t.Fatalf("injected error: got %v", err)
	}
	if err := f.AddAddress("eth0", p); err != nil {
		t.Fatalf("FailNext must fail once only: %v", err)
	}
}

func TestFakeLinksAndAnnounce(t *testing.T) {
	f := NewFake("eth0")
	st, _ := f.Link("eth0")
	if st.AdminUp || st.OperUp {
		t.Fatalf("new link should be down: %+v", st)
	}
	f.SetLinkUp("eth0", true)
	if st, _ = f.Link("eth0"); !st.OperUp {
		t.Fatalf("up link with carrier not oper up: %+v", st)
	}
	f.SetCarrier("eth0", false)
	if st, _ = f.Link("eth0"); st.OperUp || !st.AdminUp {
		t.Fatalf("carrier lost: %+v", st)
	}
	ip := netip.MustParseAddr("192.0.2.10")
	f.Announce("eth0", ip)
	f.Announce("eth0", ip)
	if a := f.Announcements(); len(a) != 2 || a[0].IP != ip || a[1].Interface != "eth0" {
		t.Fatalf("announcements = %+v", a)
	}
}

func TestFakeBondFailover(t *testing.T) {
	tests := []struct {
		name       string
		mode       BondMode
		primary    string
		cut        []string // carriers dropped, in order
		wantActive string
		wantUp     bool
	}{
		{"primary active", BondActiveBackup, "eth1", nil, "eth1", true},
		{"first slave without primary", BondActiveBackup, "", nil, "eth0", true},
		{"failover to backup", BondActiveBackup, "eth0", []string{"eth0"}, "eth1", true},
		{"all links lost", BondActiveBackup, "eth0", []string{"eth0", "eth1"}, "", false},
		{"802.3ad has no active slave", Bond8023AD, "", []string{"eth0"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFake("eth0", "eth1")
			err := f.CreateBond(BondConfig{Name: "bond0", Mode: tt.mode, MIIMon: 100 * time.Millisecond, Primary: tt.primary, Slaves: []string{"eth0", "eth1"}})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tt.cut {
				f.SetCarrier(c, false)
			}
			st, err := f.Bond("bond0")
			if err != nil {
				t.Fatal(err)
			}
			if st.ActiveSlave != tt.wantActive || st.OperUp != tt.wantUp || st.Mode != tt.mode || len(st.Slaves) != 2 {
				t.Fatalf("status = %+v; want active %q up %v", st, tt.wantActive, tt.wantUp)
			}
			for _, s := range st.Slaves {
				if s.LinkUp == slices.Contains(tt.cut, s.Name) {
					t.Errorf("slave %s LinkUp = %v", s.Name, s.LinkUp)
				}
			}
		})
	}
}

func TestFakeBondPrimaryReturns(t *testing.T) {
	f := NewFake("eth0", "eth1")
	f.CreateBond(BondConfig{Name: "bond0", Mode: BondActiveBackup, Primary: "eth0", Slaves: []string{"eth0", "eth1"}})
	f.SetCarrier("eth0", false)
	f.SetCarrier("eth0", true)
	if st, _ := f.Bond("bond0"); st.ActiveSlave != "eth0" {
		t.Fatalf("primary did not return: active %q", st.ActiveSlave)
	}
}

func TestDiffBond(t *testing.T) {
	base := BondStatus{Name: "bond0", OperUp: true, ActiveSlave: "eth0", Slaves: []SlaveStatus{{Name: "eth0", LinkUp: true, Active: true}, {Name: "eth1", LinkUp: true}}}
	failed := BondStatus{Name: "bond0", OperUp: true, ActiveSlave: "eth1", Slaves: []SlaveStatus{{Name: "eth0"}, {Name: "eth1", LinkUp: true, Active: true}}}
	dead := BondStatus{Name: "bond0", Slaves: []SlaveStatus{{Name: "eth0"}}}
	tests := []struct {
		name     string
		old, cur BondStatus
		want     []string
	}{
		{"no change", base, base, nil},
		{"failover", base, failed, []string{"bond0: slave eth0 link up -> down", "bond0: active slave eth0 -> eth1"}},
		{"lost all", failed, dead, []string{"bond0: slave eth1 removed", "bond0: active slave eth1 -> none", "bond0: bond up -> down"}},
		{"slave added", dead, failed, []string{"bond0: slave eth1 added", "bond0: active slave none -> eth1", "bond0: bond down -> up"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, e := range DiffBond(tt.old, tt.cur) {
				got = append(got, e.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestWatchBond(t *testing.T) {
	f := NewFake("eth0", "eth1")
	if err := f.CreateBond(BondConfig{Name: "bond0", Mode: BondActiveBackup, Primary: "eth0", Slaves: []string{"eth0", "eth1"}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var mu sync.Mutex
	var events []BondEvent
	got := make(chan struct{}, 10)
	done := make(chan error, 1)
	go func() {
		done <- WatchBond(ctx, f, "bond0", 5*time.Millisecond, func(e BondEvent) {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
			got <- struct{}{}
		}, nil)
	}()
	time.Sleep(30 * time.Millisecond) // baseline read
	f.SetCarrier("eth0", false)
	for i := 0; i < 2; i++ {
		select {
		case <-got:
		case <-ctx.Done():
			t.Fatal("no bond event within 5s")
		}
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 2 || events[1].Kind != BondActiveChanged || events[1].New != "eth1" || events[1].Status.ActiveSlave != "eth1" {
		t.Fatalf("events = %+v", events)
	}
}

func TestFakeWatchdog(t *testing.T) {
	now := time.Unix(1000, 0)
	w := NewFakeWatchdog(10*time.Second, true)
	w.Now = func() time.Time { return now }
	armed := now
	if r, _ := w.BootStatus(); !r {
		t.Fatal("BootStatus lost")
	}
	now = now.Add(9 * time.Second)
	w.Keepalive()
	if w.Expired(now.Add(10*time.Second), armed) {
		t.Fatal("expired at exactly the timeout")
	}
	if !w.Expired(now.Add(11*time.Second), armed) {
		t.Fatal("not expired after timeout")
	}
	if err := w.SetTimeout(500 * time.Millisecond); err == nil {
		t.Fatal("sub-second timeout accepted")
	}
	w.Close()
	if w.Expired(now.Add(time.Hour), armed) {
		t.Fatal("magic-closed watchdog expired")
	}
	if err := w.Keepalive(); err == nil {
		t.Fatal("keepalive after close succeeded")
	}
	if st := w.State(); st.Keepalives != 1 || !st.Closed || st.Abandoned {
		t.Fatalf("state = %+v", st)
	}
}
