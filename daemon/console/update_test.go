package console_test

import (
	"testing"

	"github.com/sipedge/sipedge/hal/testenv"
)

// Option 12 asks the daemon for its firmware and, on a box that did not
// boot from the A/B disk (this test's daemon), says why no update can be
// installed instead of asking for a URL.
func TestUpdateFromConsole(t *testing.T) {
	testenv.Short(t, "starts the daemon and the console")
	bin := testenv.SipedgeBinary(t)
	cfgPath, _ := startDaemon(t)
	tm, _ := startConsole(t, bin, "-config", cfgPath, "-shell", "-")
	tm.expect(`New password: `)
	tm.line("console secret 0")
	tm.expect(`Again: `)
	tm.line("console secret 0")
	tm.expect(`12\) Update firmware \(from a URL\)`)
	tm.expect(menuPrompt)
	tm.line("12")
	tm.expect(`Running v0\.0\.0\+0\.`)
	tm.expect(`Updates are not possible now: update: this box did not boot from the A/B disk`)
	tm.expect(menuPrompt)
}
