package image

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sipedge/sipedge/hal/testenv"
	"github.com/sipedge/sipedge/platform/bundle"
)

// buildFirmware builds the daemon with the test key trusted and the
// version v0.1.0+build.
func buildFirmware(t *testing.T, build string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "sipedge")
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "sipedge_testkey", "-ldflags",
		"-s -w -X github.com/sipedge/sipedge/daemon/version.Version=v0.1.0 -X github.com/sipedge/sipedge/daemon/version.Build="+build,
		"-o", out, "./daemon")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build firmware %s: %v\n%s", build, err, b)
	}
	return out
}

// writeBundle signs slot with the test key as a bundle file padded to
// whole sectors (QEMU attaches it as a disk: the box reads it as
// /dev/vdX; what follows the last part is never read).
func writeBundle(t *testing.T, dir, name string, m bundle.Manifest, slot []byte, tamper bool) string {
	t.Helper()
	var b bytes.Buffer
	if err := bundle.Write(&b, m, []bundle.Input{{Name: "slot.img", Data: slot}}, bundle.TestPrivateKey()); err != nil {
		t.Fatal(err)
	}
	raw := b.Bytes()
	if tamper {
		raw[len(raw)-len(slot)/2] ^= 0x40 // a byte in the middle of the slot image
	}
	raw = append(raw, make([]byte, (512-len(raw)%512)%512)...)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestUpdateInQEMU boots the A/B disk image (GRUB from Debian's
// grub-pc-bin, slot A, empty slot B, ext4 /data) and updates it with
// signed bundles handed to the box as extra virtio disks, through the
// control method that `sipedge ctl update apply` calls:
//
//   - a tampered bundle, one for another board and an older one are
//     refused, and nothing is armed;
//   - a good build whose manifest carries the signed test flag
//     exit_at_start: its daemon exits on the trial boot, PID 1 records why
//     and reboots, and GRUB (whose one-shot try is spent) boots A, which
//     reports "update to X rolled back: ...";
//   - one with hang_at_start: its daemon hangs before it feeds the
//     watchdog, which PID 1 armed early; the watchdog resets the VM and A
//     comes back, reporting the hang;
//   - QEMU killed while the good bundle is being written to slot B: the
//     next start boots A;
//   - the good bundle uploaded over HTTPS to the web API with the
//     operator's password (QEMU's user network forwards a loopback port
//     to the box's web server): the trial boot of B commits after
//     update.commit_after of health, and `ctl update` shows the new
//     version in slot B.
func TestUpdateInQEMU(t *testing.T) {
	qemu := testenv.MustHaveQEMU(t)
	testenv.MustHaveExec(t, "sfdisk", "mke2fs", "grub-mkimage")
	testenv.Short(t, "boots a VM seven times (about four minutes under TCG)")
	cache := needKernel(t)
	// A short trial (5 s of health) and no recovery window at boot.
	rootfs := copyRootFS(t, "console: {login: true, recovery: true, idle_logout: 10m}",
		"console: {login: true, recovery: false, idle_logout: 10m}\nupdate: {commit_after: 5s, give_up_after: 90s}")
	dirA, dirB, dir := t.TempDir(), t.TempDir(), t.TempDir()
	binA, binB := buildFirmware(t, "100"), buildFirmware(t, "101")
	resA, err := Build(Options{Binary: binA, Profile: "qemu-x86_64", CacheDir: cache, RootFS: rootfs, OutDir: dirA})
	if err != nil {
		t.Fatal(err)
	}
	disk, err := BuildDisk(Options{RootFS: rootfs, OutDir: dirA}, resA, DiskOptions{ExtraCmdline: "sipedge.debug=1"})
	if err != nil {
		t.Fatal(err)
	}
	resB, err := Build(Options{Binary: binB, Profile: "qemu-x86_64", CacheDir: cache, RootFS: rootfs, OutDir: dirB})
	if err != nil {
		t.Fatal(err)
	}
	diskB, err := BuildDisk(Options{RootFS: rootfs, OutDir: dirB}, resB, DiskOptions{})
	if err != nil {
		t.Fatal(err)
	}
	slotA, err := os.ReadFile(disk.Slot)
	if err != nil {
		t.Fatal(err)
	}
	slotB, err := os.ReadFile(diskB.Slot)
	if err != nil {
		t.Fatal(err)
	}
	m := func(version, board string, flags *bundle.TestFlags) bundle.Manifest {
		return bundle.Manifest{Board: board, Version: version, MinVersion: "v0.0.0+0", Built: time.Unix(1700000000, 0).UTC(), Test: flags}
	}
	// The bundles, in the order of their disks: vdb, vdc, ...
	bundles := []string{
		writeBundle(t, dir, "good", m("v0.1.0+101", "qemu-x86_64", nil), slotB, false),                                  // vdb
		writeBundle(t, dir, "tampered", m("v0.1.0+101", "qemu-x86_64", nil), slotB, true),                               // vdc
		writeBundle(t, dir, "board", m("v0.1.0+101", "generic-x86_64", nil), slotB, false),                              // vdd
		writeBundle(t, dir, "older", m("v0.1.0+99", "qemu-x86_64", nil), slotA, false),                                  // vde
		writeBundle(t, dir, "exit", m("v0.1.0+101", "qemu-x86_64", &bundle.TestFlags{ExitAtStart: true}), slotB, false), // vdf
		writeBundle(t, dir, "hang", m("v0.1.0+101", "qemu-x86_64", &bundle.TestFlags{HangAtStart: true}), slotB, false), // vdg
	}
	// QEMU's user network on eth0's hub: the host reaches the box's web
	// server (192.0.2.11:443) on a loopback port, as a management host
	// would with curl.
	webPort := testenv.FreePort(t)
	drives := []string{"-drive", "file=" + disk.Disk + ",format=raw,if=virtio",
		"-netdev", fmt.Sprintf("user,id=u0,net=192.0.2.0/24,host=192.0.2.1,ipv6=off,hostfwd=tcp:127.0.0.1:%d-192.0.2.11:443", webPort),
		"-netdev", "hubport,id=u0p,hubid=0,netdev=u0"}
	for _, b := range bundles {
		drives = append(drives, "-drive", "file="+b+",format=raw,if=virtio,readonly=on")
	}
	boot := func() *vm { return bootVM(t, qemu, nil, drives...) }
	ctlCall := func(v *vm, method, params string) string {
		t.Helper()
		v.debug("sipedge-ctl " + method + " " + params)
		return v.expect(`CONSOLE ctl `+regexp.QuoteMeta(method)+` (.*)`, 3*time.Minute)[1]
	}
	bootedA := func(v *vm, what string) time.Time {
		t.Helper()
		_, at := v.expectAt(`initd: disk" .*slot=A trial=false data_persistent=true`, 3*time.Minute)
		v.expect(`watchdog armed" timeout=10s`, time.Minute) // the daemon's: it answers ctl
		t.Logf("%s: booted slot A %s after QEMU start", what, at.Sub(v.started).Round(100*time.Millisecond))
		return at
	}
	apply := func(v *vm, dev string) (string, time.Time) {
		t.Helper()
		v.phase()
		at := time.Now()
		return ctlCall(v, "update.apply", `{"file":"/dev/`+dev+`"}`), at
	}

	// Boot 1: A, cold. The refusals.
	v := boot()
	bootedA(v, "boot 1")
	if out := ctlCall(v, "update", ""); !regexp.MustCompile(`ok: .*"version":"v0\.1\.0\+100".*"slot":"A"`).MatchString(out) {
		t.Fatalf("ctl update on A: %s", out)
	}
	for _, c := range []struct{ dev, want string }{
		{"vdc", `error: .*part changed: sha256`},
		{"vdd", `error: .*bundle for another board: it is for "generic-x86_64"`},
		{"vde", `error: .*older than the running firmware: v0\.1\.0\+99 is older than the running v0\.1\.0\+100`},
	} {
		if out, _ := apply(v, c.dev); !regexp.MustCompile(c.want).MatchString(out) {
			t.Errorf("apply /dev/%s: %s, want %s", c.dev, out, c.want)
		}
	}
	// Boot 2: B on trial, whose daemon exits at start.
	out, applied := apply(v, "vdf")
	if !regexp.MustCompile(`ok: .*"version":"v0\.1\.0\+101".*"slot":"B"`).MatchString(out) {
		t.Fatalf("apply exit_at_start bundle: %s", out)
	}
	v.expect(`initd: disk" .*slot=B trial=true data_persistent=true`, 3*time.Minute)
	v.expect(`update: test flag exit_at_start`, time.Minute)
	_, bad := v.expectAt(`initd: rebooting" .*trial=true`, time.Minute)
	// Boot 3: A again, by itself.
	back := bootedA(v, "boot 3 (after the daemon exited on trial)")
	v.expect(`update to v0\.1\.0\+101 rolled back: the daemon exited during the trial \(exit status 1\)`, time.Minute)
	t.Logf("exit_at_start: apply -> trial daemon dead %s, -> A booted again %s", bad.Sub(applied).Round(100*time.Millisecond), back.Sub(bad).Round(100*time.Millisecond))

	// Boot 4: B on trial, whose daemon hangs: the watchdog resets it.
	if out, _ := apply(v, "vdg"); !regexp.MustCompile(`ok: .*"slot":"B"`).MatchString(out) {
		t.Fatalf("apply hang_at_start bundle: %s", out)
	}
	v.expect(`initd: disk" .*slot=B trial=true`, 3*time.Minute)
	_, hung := v.expectAt(`update: test flag hang_at_start`, time.Minute)
	reset := v.qmpEvent("WATCHDOG", hung.Add(-time.Second), time.Minute)
	back = bootedA(v, "boot 5 (after the watchdog reset the hung trial)")
	v.expect(`update to v0\.1\.0\+101 rolled back: it hung and the watchdog reset the box`, time.Minute)
	t.Logf("hang_at_start: hang -> watchdog reset %s, -> A booted again %s", reset.At.Sub(hung).Round(100*time.Millisecond), back.Sub(reset.At).Round(100*time.Millisecond))

	// QEMU killed while slot B is being written: A boots.
	v.phase()
	v.debug(`sipedge-ctl update.apply {"file":"/dev/vdb"}`)
	v.expect(`update: writing the inactive slot`, time.Minute)
	v.cmd.Process.Kill()
	<-v.done
	v = boot()
	bootedA(v, "boot 6 (QEMU killed while slot B was written)")

	// Boot 7: the good bundle, uploaded over HTTPS to the web API with
	// the operator's password (login, then the session and its CSRF
	// token), committed.
	if out := ctlCall(v, "web.password", `{"password":"update-Secret-17"}`); !strings.HasPrefix(out, "ok") {
		t.Fatalf("web.password: %s", out)
	}
	good, err := os.ReadFile(bundles[0])
	if err != nil {
		t.Fatal(err)
	}
	v.phase()
	applied = time.Now()
	out = uploadBundle(t, fmt.Sprintf("https://127.0.0.1:%d", webPort), "update-Secret-17", good)
	if !regexp.MustCompile(`"version":"v0\.1\.0\+101".*"slot":"B"`).MatchString(out) {
		t.Fatalf("upload good bundle: %s", out)
	}
	if m := regexp.MustCompile(`"bytes":(\d+).*"took":(\d+)`).FindStringSubmatch(out); m != nil {
		ns, _ := strconv.ParseInt(m[2], 10, 64)
		t.Logf("good bundle: %s bytes written to slot B, read back and checked in %s", m[1], time.Duration(ns).Round(100*time.Millisecond))
	}
	v.expect(`initd: disk" .*slot=B trial=true data_persistent=true`, 3*time.Minute)
	_, committed := v.expectAt(`update: committed" version=v0\.1\.0\+101 slot=B`, 3*time.Minute)
	out = ctlCall(v, "update", "")
	if !regexp.MustCompile(`"version":"v0\.1\.0\+101".*"slot":"B","trial":false.*"phase":"committed"`).MatchString(out) {
		t.Errorf("ctl update after the commit: %s", out)
	}
	t.Logf("good bundle: upload started -> committed %s", committed.Sub(applied).Round(100*time.Millisecond))
}

// uploadBundle logs in to the box's web API as a management host does
// (GET /api/session for the login's CSRF token, POST /api/login with the
// password) and POSTs the bundle to /api/update with the session; it
// returns the answer's body.
func uploadBundle(t *testing.T, base, password string, b []byte) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 5 * time.Minute,
		// The box's self-signed certificate (its fingerprint is in
		// `ctl web`); the bundle carries its own signature.
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	call := func(method, path, csrf string, body io.Reader) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, body)
		if csrf != "" {
			req.Header.Set("X-CSRF-Token", csrf)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var v map[string]any
		if err := json.Unmarshal(raw, &v); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s %s: %s %s", method, path, resp.Status, raw)
		}
		v["raw"] = string(raw)
		return v
	}
	var s map[string]any
	deadline := time.Now().Add(time.Minute)
	for { // the web server may still be starting
		req, _ := http.NewRequest("GET", base+"/api/session", nil)
		resp, err := c.Do(req)
		if err == nil {
			json.NewDecoder(resp.Body).Decode(&s)
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web API: %v", err)
		}
		time.Sleep(time.Second)
	}
	csrf, _ := s["csrf"].(string)
	pw, _ := json.Marshal(map[string]string{"password": password})
	login := call("POST", "/api/login", csrf, bytes.NewReader(pw))
	csrf, _ = login["csrf"].(string)
	return call("POST", "/api/update", csrf, bytes.NewReader(b))["raw"].(string)
}
