package initd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sipedge/sipedge/daemon/config"
	"github.com/sipedge/sipedge/daemon/console"
	"github.com/sipedge/sipedge/daemon/update"
	"github.com/sipedge/sipedge/hal"
	"github.com/sipedge/sipedge/platform"
)

// DefaultConfigPath is where the image keeps the box's configuration.
const DefaultConfigPath = "/etc/sipedge/config.yaml"

// Options configure Main.
type Options struct {
	// ConfigPath is the daemon's configuration (DefaultConfigPath).
	ConfigPath string
	// DaemonArgs are the arguments of the re-exec'd /init that runs the
	// daemon, e.g. ["run", "-config", "/etc/sipedge/config.yaml"].
	DaemonArgs []string
	// DataDev is an optional block device holding the data partition.
	DataDev string
	// SerialConsole, if set, gives the arguments of the re-exec'd /init
	// that runs the operator's console menu on the profile's console
	// port (e.g. ["console", "-serial", "/dev/ttyS0", ...]). PID 1 keeps
	// that process running, as a getty: a menu that crashes is started
	// again and never takes PID 1 down with it.
	SerialConsole func(p *platform.Profile) []string
	// Debug, if set, runs once the daemon has been started: the lab's
	// debug hooks on /dev/console (the profile's log port). It gets the
	// supervisor to find the daemon.
	Debug  func(ctx context.Context, s *Supervisor)
	Logger *slog.Logger
}

// Main performs PID 1's duties and supervises the daemon. It never
// returns: when the daemon cannot be kept running it reboots the box.
func Main(o Options) {
	if o.ConfigPath == "" {
		o.ConfigPath = DefaultConfigPath
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stdout, nil)).With("pid1", true)
	}
	start := time.Now()
	err := boot(o, log)
	log.Error("initd: rebooting", "err", err, "uptime", time.Since(start).Round(time.Millisecond))
	time.Sleep(3 * time.Second) // let the console show why
	if err := Reboot(false); err != nil {
		log.Error("initd: reboot", "err", err)
	}
	select {} // PID 1 must never return: the kernel would panic.
}

func loadConfig(path string, log *slog.Logger) *config.Config {
	cfg, err := config.Load(path)
	if err != nil {
		log.Error("initd: config unreadable, using the embedded default", "path", path, "err", err)
		return config.Default()
	}
	return cfg
}

func boot(o Options, log *slog.Logger) error {
	cfg := loadConfig(o.ConfigPath, log)
	// The system mounts first; the data partition once its drivers
	// (the disk's, ext4) are loaded.
	base := MountTable("", "")
	skipped, err := MountAll(base, SysMount)
	for _, s := range skipped {
		log.Warn("initd: optional mount skipped", "err", s)
	}
	if err != nil {
		return err
	}
	prof, err := platform.Lookup(cfg.Node.Platform)
	if err != nil {
		return err
	}
	t0 := time.Now()
	res, err := LoadModules(ModuleDir, prof.Modules, FinitModule)
	var loaded, skippedMods []string
	for _, r := range res {
		if r.Skipped {
			skippedMods = append(skippedMods, r.Name)
		} else if r.Err == nil {
			loaded = append(loaded, r.Name)
		}
	}
	log.Info("initd: modules", "platform", prof.Name, "loaded", strings.Join(loaded, ","), "skipped", strings.Join(skippedMods, ","), "took", time.Since(t0).Round(time.Millisecond))
	if err != nil {
		return err
	}
	// The watchdog, as soon as its driver is there: from now on a hang
	// anywhere (a bad firmware on trial included) resets the box.
	wdDev, wdTimeout := cfg.Watchdog.Device, cfg.Watchdog.Timeout.D()
	pet := func() {}
	if wdDev != "" {
		if err := PetWatchdog(wdDev, wdTimeout); err != nil {
			log.Warn("initd: watchdog not armed early", "device", wdDev, "err", err)
		} else {
			log.Info("initd: watchdog armed", "device", wdDev, "timeout", wdTimeout)
			pet = func() {
				if err := PetWatchdog(wdDev, wdTimeout); err != nil {
					log.Warn("initd: watchdog", "err", err)
				}
			}
		}
	}
	booted := update.ReadBoot()
	persistent := false
	if cfg.Node.DataDir != "" {
		if prof.Disk != "" && booted.Slot != "" {
			dm := MountDisk(DiskLayout{Boot: update.PartPath(prof.Disk, update.PartBoot), Data: update.PartPath(prof.Disk, update.PartData)},
				cfg.Node.DataDir, update.BootDir, filepath.Dir(o.ConfigPath), SysMount)
			persistent = dm.Persistent
			if dm.Err != nil {
				log.Error("initd: disk", "err", dm.Err, "data_persistent", dm.Persistent)
			}
			log.Info("initd: disk", "slot", booted.Slot, "trial", booted.Trial, "data_persistent", dm.Persistent, "config_seeded", dm.Seeded)
			if dm.Persistent {
				// An update that rolled back: its configuration of before.
				if restored, err := update.RestoreConfig(cfg.Node.DataDir, update.EnvPath, o.ConfigPath, booted); err != nil {
					log.Error("initd: configuration after a rollback", "err", err)
				} else if restored {
					log.Warn("initd: update rolled back: the configuration of before it is restored", "trial_config", update.ConfigTrial(cfg.Node.DataDir))
				}
			}
			cfg = loadConfig(o.ConfigPath, log) // the data partition's
		} else {
			skipped, err := MountAll(MountTable(cfg.Node.DataDir, o.DataDev)[len(base):], SysMount)
			for _, s := range skipped {
				log.Warn("initd: optional mount skipped", "err", s)
			}
			if err != nil {
				return err
			}
		}
	}
	if cfg.Node.Name != "" {
		if err := unix.Sethostname([]byte(cfg.Node.Name)); err != nil {
			log.Warn("initd: sethostname", "err", err)
		}
	}
	net, err := hal.OpenNetwork()
	if err != nil {
		return err
	}
	if err := net.SetLinkUp("lo", true); err != nil {
		log.Warn("initd: loopback", "err", err)
	}

	ctx := context.Background()
	reaper := NewReaper()
	go reaper.Run(ctx)

	self, err := os.Executable()
	if err != nil {
		self = "/init"
	}
	wait := func(pid int) <-chan string {
		c := make(chan string, 1)
		go func() {
			ws := <-reaper.Wait(pid)
			if ws.Signaled() {
				c <- "signal: " + ws.Signal().String()
			} else {
				c <- fmt.Sprintf("exit status %d", ws.ExitStatus())
			}
		}()
		return c
	}
	sup := NewSupervisor(SuperviseOptions{
		Logger: log,
		Start: func() (int, error) {
			pet()
			return startChild(self, o.DaemonArgs, os.Stdin, nil)
		},
		Wait: wait,
		OnExit: func(how string) {
			cur := loadConfig(o.ConfigPath, log)
			for _, err := range RemoveVIPs(net, cur) {
				log.Error("initd: VIP cleanup", "err", err)
			}
			log.Info("initd: VIPs removed after daemon death", "vips", len(cur.VIPs))
			rebootOnUpdate(cur.Node.DataDir, booted, persistent, how, log)
		},
	})
	if o.SerialConsole != nil && prof.Console.Device != "" && cfg.Console.RecoveryOn() {
		requestRecovery(ctx, cfg.Node.DataDir, "/dev/"+prof.Console.Device, prof.Console.Baud, console.OfferRecovery, log)
	}
	if o.SerialConsole != nil && prof.Console.Device != "" {
		args := o.SerialConsole(prof)
		log.Info("initd: console menu", "device", prof.Console.Device, "baud", prof.Console.Baud, "log", prof.LogDevice())
		go KeepRunning(ctx, KeepOptions{
			Name:   "console menu",
			Logger: log,
			// Its own session, no stdin: it opens the port itself.
			Start: func() (int, error) {
				null, err := os.Open(os.DevNull)
				if err != nil {
					return 0, err
				}
				defer null.Close()
				return startChild(self, args, null, &unix.SysProcAttr{Setsid: true})
			},
			Wait: wait,
		})
	}
	if o.Debug != nil {
		go o.Debug(ctx, sup)
	}
	return sup.Run(ctx)
}

// startChild starts /init again with args, its output on PID 1's (the
// log port). The reaper collects it: the process is released, not
// waited for.
func startChild(self string, args []string, stdin *os.File, sys *unix.SysProcAttr) (int, error) {
	p, err := os.StartProcess(self, append([]string{self}, args...), &os.ProcAttr{
		Files: []*os.File{stdin, os.Stdout, os.Stderr},
		Env:   []string{"PATH=/bin:/sbin", "HOME=/", "SIPEDGE_PID1_CHILD=1"},
		Sys:   sys,
	})
	if err != nil {
		return 0, fmt.Errorf("initd: start %s: %w", strings.Join(args, " "), err)
	}
	pid := p.Pid
	p.Release() // the reaper waits for it
	return pid, nil
}
