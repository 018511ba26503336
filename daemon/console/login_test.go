package console_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/console"
	"github.com/sipedge/sipedge/daemon/internal/daemontest"
	"github.com/sipedge/sipedge/hal/testenv"
)

// TestConsoleLoginLockout drives the real console of a box whose
// password is set: nothing of the menu shows before the right password;
// three wrong ones lock the login (30 s), during which not even the
// right password is checked; every failure and the lockout are events.
// The lock lives in the daemon (a new console process finds it).
// After a daemon restart the right password lets the operator in; "0"
// logs out (a serial console has no exit), and so does an idle session.
func TestConsoleLoginLockout(t *testing.T) {
	testenv.Short(t, "starts the daemon and the console")
	bin := testenv.SipedgeBinary(t)
	d := startDaemonWith(t, "console: {idle_logout: 10s}")
	const right = "right horse battery"
	if out, errOut, code := d.CtlIn(right+"\n", "web", "password"); code != 0 {
		t.Fatalf("ctl web password: %d %s%s", code, out, errOut)
	}
	tm, _ := startConsole(t, bin, "-config", d.Config, "-shell", "-", "-no-exit")
	pre := tm.expect(`Password: `)
	for _, leak := range []string{"edge-con", "management", "VIP", "Status"} {
		if strings.Contains(pre, leak) {
			t.Errorf("the console shows %q before the login:\n%s", leak, pre)
		}
	}
	if !regexp.MustCompile(`sipedge \S+  -  `).MatchString(pre) {
		t.Errorf("no product/version/host line before the login:\n%s", pre)
	}
	tm.line("wrong 1")
	tm.expect(`Login incorrect\.\r?\n`)
	tm.expect(`Password: `)
	tm.line("wrong 2")
	tm.expect(`Login incorrect\.\r?\n`)
	tm.expect(`Password: `)
	tm.line("wrong 3")
	tm.expect(`Login incorrect\. 3 wrong passwords: locked for 30s\.`)
	tm.expect(`Console login locked for \d+s after wrong passwords\.`)
	tm.expect(`Press Enter to try again\. `)
	tm.line("")
	tm.expect(`Console login locked for`)

	// A second console process meets the same lock, and even the right
	// password is not checked while it holds.
	tm2, _ := startConsole(t, bin, "-config", d.Config, "-shell", "-", "-no-exit")
	tm2.expect(`Console login locked for \d+s`)
	count := func(kind string) int {
		out, _, _ := d.Ctl("events", "100")
		return strings.Count(out, kind)
	}
	if f, l, ok := count("console.login_failed"), count("console.lockout"), count("console.login "); f != 2 || l != 1 || ok != 0 {
		t.Errorf("events: %d console.login_failed, %d console.lockout, %d console.login; want 2, 1, 0", f, l, ok)
	}

	// A restarted daemon: the right password lets the operator in.
	if err := d.Stop(syscall.SIGTERM, 15*time.Second); err != nil {
		t.Fatalf("daemon stop: %v", err)
	}
	d2 := daemontest.New(t, d.Dir)
	d2.Start()
	tm2.line("")
	tm2.expect(`Password: `)
	tm2.line(right)
	banner := tm2.expect(`(?s)node edge-con .*` + menuPrompt)
	if !strings.Contains(banner, " 0) Log out") {
		t.Errorf("a console with login offers no log out:\n%s", banner)
	}
	if out, _, _ := d2.Ctl("events"); !strings.Contains(out, "operator logged in on the serial console") {
		t.Errorf("no console.login event:\n%s", out)
	}
	tm2.line("0")
	tm2.expect(`Logged out\.`)
	tm2.expect(`Password: `)
	tm2.line(right)
	tm2.expect(menuPrompt)
	// Idle: logged out after idle_logout without a key.
	t0 := time.Now()
	tm2.expect(`No key for a while: logged out\.`)
	tm2.expect(`Password: `)
	if idle := time.Since(t0); idle < 9*time.Second {
		t.Errorf("logged out after %v idle, want 10s", idle)
	}
}

// TestRecoveryClearsPassword: the request PID 1 leaves in the data
// directory when the recovery key is pressed at boot makes the next
// daemon start clear the password (an event says so, once); the console
// then has a new one chosen, and the old one no longer works.
func TestRecoveryClearsPassword(t *testing.T) {
	testenv.Short(t, "starts the daemon and the console")
	bin := testenv.SipedgeBinary(t)
	d := startDaemonWith(t)
	if _, _, code := d.CtlIn("forgotten password\n", "web", "password"); code != 0 {
		t.Fatal("ctl web password failed")
	}
	if err := d.Stop(syscall.SIGTERM, 15*time.Second); err != nil {
		t.Fatalf("daemon stop: %v", err)
	}
	req := filepath.Join(d.DataDir(), console.RecoveryFile)
	if err := os.WriteFile(req, []byte("requested on /dev/ttyS0 at 2026-12-02T20:00:00Z\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d2 := daemontest.New(t, d.Dir)
	d2.Start()
	if _, err := os.Stat(req); !os.IsNotExist(err) {
		t.Errorf("the request is still there after the start: %v", err)
	}
	if out, _, _ := d2.Ctl("events"); strings.Count(out, "console.password_reset") != 1 || !strings.Contains(out, "/dev/ttyS0") {
		t.Errorf("events after the recovery:\n%s", out)
	}
	tm, _ := startConsole(t, bin, "-config", d2.Config, "-shell", "-")
	tm.expect(`No password is set on this box`)
	tm.expect(`New password: `)
	tm.line("a new password")
	tm.expect(`Again: `)
	tm.line("a new password")
	tm.expect(menuPrompt)
	// Restarted without a request: nothing is cleared again.
	if err := d2.Stop(syscall.SIGTERM, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	d3 := daemontest.New(t, d.Dir)
	d3.Start()
	tm3, _ := startConsole(t, bin, "-config", d3.Config, "-shell", "-")
	if got := tm3.expect(`Password: `); strings.Contains(got, "No password is set") {
		t.Errorf("after a plain restart the console asks for a new password:\n%s", got)
	}
	tm3.line("a new password")
	tm3.expect(menuPrompt)
	if out, _, _ := d3.Ctl("events", "200"); strings.Count(out, "console.password_reset") != 1 {
		t.Errorf("the password was cleared again:\n%s", out)
	}
}
