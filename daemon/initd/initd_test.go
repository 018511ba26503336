package initd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/config"
	"github.com/sipedge/sipedge/hal"
	"github.com/sipedge/sipedge/platform"
)

func TestMountTable(t *testing.T) {
	tests := []struct {
		name, dataDir, dataDev string
		want                   []string // target:fstype in order
	}{
		{"no data", "", "", []string{"/proc:proc", "/sys:sysfs", "/dev:devtmpfs", "/dev/pts:devpts", "/run:tmpfs", "/tmp:tmpfs"}},
		{"tmpfs data", "/data", "", []string{"/proc:proc", "/sys:sysfs", "/dev:devtmpfs", "/dev/pts:devpts", "/run:tmpfs", "/tmp:tmpfs", "/data:tmpfs"}},
		{"data partition", "/data", "/dev/vda1", []string{"/proc:proc", "/sys:sysfs", "/dev:devtmpfs", "/dev/pts:devpts", "/run:tmpfs", "/tmp:tmpfs", "/data:ext4", "/data:tmpfs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, m := range MountTable(tt.dataDir, tt.dataDev) {
				got = append(got, m.Target+":"+m.FSType)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestMountAll(t *testing.T) {
	root := t.TempDir()
	table := MountTable(filepath.Join(root, "data"), "/dev/vda1")
	for i := range table {
		table[i].Target = filepath.Join(root, table[i].Target)
	}
	tests := []struct {
		name    string
		fail    map[string]bool // fstype that fails
		want    []string
		skipped int
		wantErr bool
	}{
		{"partition mounts", nil, []string{"proc", "sysfs", "devtmpfs", "devpts", "tmpfs", "tmpfs", "ext4"}, 0, false},
		{"tmpfs fallback", map[string]bool{"ext4": true, "devpts": true}, []string{"proc", "sysfs", "devtmpfs", "tmpfs", "tmpfs", "tmpfs"}, 2, false},
		{"required fails", map[string]bool{"sysfs": true}, []string{"proc"}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			skipped, err := MountAll(table, func(src, target, fstype string, flags uintptr, data string) error {
				if tt.fail[fstype] {
					return errors.New("no")
				}
				got = append(got, fstype)
				return nil
			})
			if (err != nil) != tt.wantErr || len(skipped) != tt.skipped || !slices.Equal(got, tt.want) {
				t.Fatalf("mounted %v, skipped %v, err %v", got, skipped, err)
			}
		})
	}
}

func TestLoadModules(t *testing.T) {
	mods := []platform.Module{{Name: "watchdog"}, {Name: "i6300esb", Optional: true}, {Name: "softdog", Optional: true},
		{Name: "tls"}, {Name: "bonding", Params: "max_bonds=0"}, {Name: "virtio-net", Optional: true}}
	tests := []struct {
		name    string
		errs    map[string]error
		loaded  []string // in call order with params
		skipped []string
		wantErr string
	}{
		{"all load", nil, []string{"watchdog", "i6300esb", "softdog", "tls", "bonding max_bonds=0", "virtio_net"}, nil, ""},
		{"optional absent and no hardware", map[string]error{"i6300esb": ErrNoDevice, "virtio_net": fs.ErrNotExist}, []string{"watchdog", "softdog", "tls", "bonding max_bonds=0"}, []string{"i6300esb", "virtio-net"}, ""},
		{"already loaded", map[string]error{"tls": ErrModuleLoaded}, []string{"watchdog", "i6300esb", "softdog", "bonding max_bonds=0", "virtio_net"}, nil, ""},
		{"required missing stops", map[string]error{"tls": fs.ErrNotExist}, []string{"watchdog", "i6300esb", "softdog"}, nil, "load module tls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var loaded []string
			res, err := LoadModules("/lib/modules", mods, func(p, params string) error {
				if !strings.HasPrefix(p, "/lib/modules/") || !strings.HasSuffix(p, ".ko") {
					t.Fatalf("bad path %s", p)
				}
				n := strings.TrimSuffix(filepath.Base(p), ".ko")
				if e := tt.errs[n]; e != nil {
					return fmt.Errorf("%s: %w", p, e)
				}
				loaded = append(loaded, strings.TrimSpace(n+" "+params))
				return nil
			})
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			var skipped []string
			for _, r := range res {
				if r.Skipped {
					skipped = append(skipped, r.Name)
				}
			}
			if !slices.Equal(loaded, tt.loaded) || !slices.Equal(skipped, tt.skipped) {
				t.Fatalf("loaded %v skipped %v", loaded, skipped)
			}
		})
	}
}

func TestSupervisorRestartsThenGivesUp(t *testing.T) {
	now := time.Unix(0, 0)
	var events []string
	exits := make(chan string, 10)
	pid := 100
	s := NewSupervisor(SuperviseOptions{
		Start: func() (int, error) { pid++; events = append(events, fmt.Sprintf("start %d", pid)); return pid, nil },
		Wait: func(p int) <-chan string {
			c := make(chan string, 1)
			c <- <-exits
			return c
		},
		OnExit:       func(how string) { events = append(events, "cleanup "+how) },
		RestartDelay: 2 * time.Second,
		MaxRestarts:  3,
		Window:       time.Minute,
		Now:          func() time.Time { return now },
		Sleep: func(_ context.Context, d time.Duration) {
			events = append(events, "sleep "+d.String())
			now = now.Add(d)
		},
	})
	exits <- "exit status 1"
	exits <- "signal: killed"
	exits <- "exit status 2"
	err := s.Run(context.Background())
	if !errors.Is(err, errGaveUp) {
		t.Fatalf("err = %v", err)
	}
	want := []string{"start 101", "cleanup exit status 1", "sleep 2s", "start 102", "cleanup signal: killed", "sleep 2s", "start 103", "cleanup exit status 2"}
	if !slices.Equal(events, want) {
		t.Fatalf("events %q\nwant %q", events, want)
	}
	if s.Starts() != 3 || s.DaemonPID() != 0 {
		t.Fatalf("starts %d pid %d", s.Starts(), s.DaemonPID())
	}
}

func TestSupervisorForgetsOldDeaths(t *testing.T) {
	now := time.Unix(0, 0)
	exits := make(chan string, 10)
	for i := 0; i < 6; i++ {
		exits <- "exit status 1"
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := NewSupervisor(SuperviseOptions{
		Start: func() (int, error) { return 1, nil },
		Wait: func(int) <-chan string {
			c := make(chan string, 1)
			c <- <-exits
			if len(exits) == 0 {
				cancel()
			}
			return c
		},
		MaxRestarts:  2,
		Window:       time.Minute,
		RestartDelay: 2 * time.Minute, // each death is outside the last one's window
		Now:          func() time.Time { return now },
		Sleep:        func(_ context.Context, d time.Duration) { now = now.Add(d) },
	})
	if err := s.Run(ctx); errors.Is(err, errGaveUp) {
		t.Fatal("gave up on deaths spread beyond the window")
	}
	if s.Starts() != 6 {
		t.Fatalf("starts = %d", s.Starts())
	}
}

func TestRemoveVIPs(t *testing.T) {
	f := hal.NewFake("bond0", "eth2")
	vip := netip.MustParsePrefix("192.0.2.10/24")
	db := netip.MustParsePrefix("198.51.100.10/24")
	mgmt := netip.MustParsePrefix("192.0.2.11/24")
	for _, a := range []struct {
		ifn string
		p   netip.Prefix
	}{{"bond0", vip}, {"bond0", mgmt}, {"eth2", db}} {
		f.AddAddress(a.ifn, a.p)
	}
	cfg := &config.Config{VIPs: []config.VIP{
		{Name: "sip", Address: vip, Interface: "bond0"},
		{Name: "db", Address: db, Interface: "eth2"},
		{Name: "gone", Address: netip.MustParsePrefix("192.0.2.99/24"), Interface: "eth9"},
	}}
	errs := RemoveVIPs(f, cfg)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "gone") {
		t.Fatalf("errs = %v", errs)
	}
	if f.HasAddress("bond0", vip) || f.HasAddress("eth2", db) || !f.HasAddress("bond0", mgmt) {
		a, _ := f.Addresses("bond0")
		t.Fatalf("bond0 has %v", a)
	}
}

func TestReaper(t *testing.T) {
	r := NewReaper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	for _, code := range []int{0, 3} {
		cmd := exec.Command("sh", "-c", fmt.Sprintf("exit %d", code))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		select {
		case ws := <-r.Wait(cmd.Process.Pid):
			if !ws.Exited() || ws.ExitStatus() != code {
				t.Fatalf("status %v, want exit %d", ws, code)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("child not reaped")
		}
	}
}

func TestKeepRunningBacksOffAndNeverGivesUp(t *testing.T) {
	now := time.Unix(0, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sleeps []time.Duration
	// How long each run lives; a start error is a run of -1.
	lives := []time.Duration{0, 0, 0, -1, 0, 0, time.Minute, 0}
	runs := 0
	KeepRunning(ctx, KeepOptions{
		Name: "console menu",
		Start: func() (int, error) {
			if lives[runs] < 0 {
				runs++
				return 0, errors.New("no binary")
			}
			return 100 + runs, nil
		},
		Wait: func(pid int) <-chan string {
			c := make(chan string, 1)
			now = now.Add(lives[runs])
			runs++
			c <- "exit status 1"
			return c
		},
		MinDelay: time.Second, MaxDelay: 8 * time.Second, StableAfter: 30 * time.Second,
		Now: func() time.Time { return now },
		Sleep: func(_ context.Context, d time.Duration) {
			sleeps = append(sleeps, d)
			now = now.Add(d)
			if runs == len(lives) {
				cancel()
			}
		},
	})
	// Doubling up to the cap, reset after a run that lived past StableAfter.
	want := []time.Duration{1, 2, 4, 8, 8, 8, 1, 2}
	for i := range want {
		want[i] *= time.Second
	}
	if runs != len(lives) || !slices.Equal(sleeps, want) {
		t.Fatalf("runs %d sleeps %v, want %v", runs, sleeps, want)
	}
}
