// Package platform holds sipedge's board profiles: for each kind of box
// the image runs on, the kernel modules to load and in what order, the
// NIC names and bond layout, the serial console, and the watchdog device
// and timeout. Profiles are YAML files embedded in the binary
// (profiles/*.yaml); Lookup returns one by name.
//
// The order of Modules is the load order: PID 1 loads them one by one
// with finit_module (there is no modprobe in the image), so every module
// must come after the modules it depends on (CheckOrder verifies that
// against the .ko files' own "depends=" fields).
//
// A board has up to two serial roles. Console is the operator's port:
// PID 1 runs the console menu (sipedge console) there and nothing else
// writes to it. Log is where the kernel, PID 1 and the daemon write
// their log and where the lab's debug hooks (sipedge.debug=1) listen: it
// is the kernel's /dev/console, so the last console= of KernelCmdline
// must name it. A board with one UART gives the log to the VGA console
// (tty0) so that the menu stays readable on an 80x24 serial terminal.
package platform

import (
	"bytes"
	"embed"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

//go:embed profiles/*.yaml
var profileFS embed.FS

// Profile is one board.
type Profile struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Arch        string `yaml:"arch"`
	// KernelCmdline is what the boot loader (or QEMU's -append) passes.
	KernelCmdline string   `yaml:"kernel_cmdline"`
	Modules       []Module `yaml:"modules"`
	NICs          []string `yaml:"nics"`
	Bonds         []Bond   `yaml:"bonds"`
	// Console is the operator's serial port: the console menu runs there.
	Console Console `yaml:"console"`
	// Log is the kernel's /dev/console: kernel, PID 1 and daemon logs,
	// and the debug hooks. Empty: the same as Console (one shared port).
	Log      Log      `yaml:"log"`
	Watchdog Watchdog `yaml:"watchdog"`
	// Disk is the block device of the boot disk (out/disk.img's layout:
	// boot, slot A, slot B, data), e.g. /dev/vda; empty when the board
	// boots without one (an initramfs loaded by QEMU's -kernel).
	Disk string `yaml:"disk"`
}

// Module is one kernel module, loaded in list order.
type Module struct {
	Name   string `yaml:"name"`   // as in the .ko file name, without .ko
	Params string `yaml:"params"` // module parameters, "a=1 b=2"
	// Optional modules are skipped without error when absent or when
	// their hardware is missing (ENODEV).
	Optional bool `yaml:"optional"`
}

// Bond is the board's default bond layout.
type Bond struct {
	Name    string   `yaml:"name"`
	Mode    string   `yaml:"mode"`
	MIIMon  Duration `yaml:"miimon"`
	Primary string   `yaml:"primary"`
	Slaves  []string `yaml:"slaves"`
}

// Console is the serial console.
type Console struct {
	Device string `yaml:"device"` // e.g. ttyS0
	Baud   int    `yaml:"baud"`
}

// Log is where the system's log goes (the kernel's /dev/console).
type Log struct {
	Device string `yaml:"device"` // e.g. ttyS1 or tty0
}

// LogDevice is the log's device: Log.Device, or the console's when the
// board has only one port.
func (p *Profile) LogDevice() string {
	if p.Log.Device != "" {
		return p.Log.Device
	}
	return p.Console.Device
}

// KernelConsole is the device the kernel makes /dev/console: the last
// console= of the command line ("" if there is none).
func KernelConsole(cmdline string) string {
	dev := ""
	for _, w := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(w, "console="); ok {
			dev, _, _ = strings.Cut(v, ",")
		}
	}
	return dev
}

// Watchdog is the board's hardware watchdog.
type Watchdog struct {
	Device  string   `yaml:"device"`
	Driver  string   `yaml:"driver"`
	Timeout Duration `yaml:"timeout"`
}

// Duration is a time.Duration written as "100ms" or "10s".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("want a duration such as 10s, got %q", b)
	}
	*d = Duration(v)
	return nil
}

// Names lists the embedded profiles, sorted.
func Names() []string {
	ents, _ := profileFS.ReadDir("profiles")
	var names []string
	for _, e := range ents {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(names)
	return names
}

// Lookup returns the named profile.
func Lookup(name string) (*Profile, error) {
	if name == "" || strings.ContainsAny(name, "/\\.") {
		return nil, fmt.Errorf("platform: bad profile name %q", name)
	}
	b, err := profileFS.ReadFile(path.Join("profiles", name+".yaml"))
	if err != nil {
		return nil, fmt.Errorf("platform: unknown profile %q (have %s)", name, strings.Join(Names(), ", "))
	}
	return Parse(name+".yaml", b)
}

// Parse decodes and validates a profile.
func Parse(file string, b []byte) (*Profile, error) {
	var p Profile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("platform: %s: %w", file, err)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("platform: %s: %w", file, err)
	}
	return &p, nil
}

// Validate checks the profile's own consistency.
func (p *Profile) Validate() error {
	if p.Name == "" {
		return fmt.Errorf("name is empty")
	}
	seen := map[string]bool{}
	for i, m := range p.Modules {
		if m.Name == "" || strings.ContainsAny(m.Name, "/ ") {
			return fmt.Errorf("modules[%d]: bad name %q", i, m.Name)
		}
		if seen[m.Name] {
			return fmt.Errorf("modules[%d]: %s listed twice", i, m.Name)
		}
		seen[m.Name] = true
	}
	nics := map[string]bool{}
	for _, n := range p.NICs {
		nics[n] = true
	}
	for i, b := range p.Bonds {
		if b.Name == "" || len(b.Slaves) == 0 {
			return fmt.Errorf("bonds[%d]: needs a name and slaves", i)
		}
		if b.Mode != "active-backup" && b.Mode != "802.3ad" {
			return fmt.Errorf("bonds[%d]: mode %q is not active-backup or 802.3ad", i, b.Mode)
		}
		for _, s := range b.Slaves {
			if !nics[s] {
				return fmt.Errorf("bonds[%d]: slave %s is not one of the NICs %v", i, s, p.NICs)
			}
		}
		if b.Primary != "" && !contains(b.Slaves, b.Primary) {
			return fmt.Errorf("bonds[%d]: primary %s is not a slave", i, b.Primary)
		}
	}
	if p.Console.Device == "" || p.Console.Baud <= 0 {
		return fmt.Errorf("console needs a device and a baud rate")
	}
	if kc := KernelConsole(p.KernelCmdline); kc != "" && kc != p.LogDevice() {
		return fmt.Errorf("kernel_cmdline makes %s the kernel console (its last console=), but the log device is %s", kc, p.LogDevice())
	}
	if p.Watchdog.Device != "" && p.Watchdog.Timeout.D() < time.Second {
		return fmt.Errorf("watchdog timeout %v is below 1s", p.Watchdog.Timeout.D())
	}
	return nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// ModuleIndex returns the position of name in the load order, or -1.
// Module names compare with '-' and '_' as equal, as the kernel does.
func (p *Profile) ModuleIndex(name string) int {
	for i, m := range p.Modules {
		if NormModule(m.Name) == NormModule(name) {
			return i
		}
	}
	return -1
}

// NormModule is the kernel's spelling of a module name ('-' -> '_').
func NormModule(name string) string { return strings.ReplaceAll(name, "-", "_") }

// CheckOrder verifies that every module's dependencies, as reported by
// depends (the .ko's "depends=" field; nil for a module that is built
// into the kernel or absent), come earlier in the list. A dependency
// not in the list at all is an error unless builtin reports it so.
func (p *Profile) CheckOrder(depends func(name string) ([]string, error), builtin func(name string) bool) error {
	for i, m := range p.Modules {
		deps, err := depends(m.Name)
		if err != nil {
			if m.Optional {
				continue
			}
			return fmt.Errorf("platform %s: module %s: %w", p.Name, m.Name, err)
		}
		for _, d := range deps {
			j := p.ModuleIndex(d)
			switch {
			case j < 0 && builtin != nil && builtin(d):
			case j < 0:
				return fmt.Errorf("platform %s: module %s depends on %s, which is not in the list", p.Name, m.Name, d)
			case j > i:
				return fmt.Errorf("platform %s: module %s depends on %s, which is loaded after it", p.Name, m.Name, d)
			}
		}
	}
	return nil
}
