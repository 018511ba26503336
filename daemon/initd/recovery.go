package initd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/sipedge/sipedge/daemon/console"
)

// RecoveryWindow is how long PID 1 waits at boot for the console
// password recovery key on the console port.
const RecoveryWindow = 3 * time.Second

// offerFunc offers the recovery on a device and reports whether the
// operator asked for it (console.OfferRecovery).
type offerFunc func(ctx context.Context, device string, baud int, window time.Duration) (bool, error)

// requestRecovery offers the console password recovery on device and,
// when the operator presses the key, leaves console.RecoveryFile in
// dataDir for the daemon, which clears the password at its start and
// records the event. It reports whether the recovery was requested.
func requestRecovery(ctx context.Context, dataDir, device string, baud int, offer offerFunc, log *slog.Logger) bool {
	asked, err := offer(ctx, device, baud, RecoveryWindow)
	if err != nil {
		log.Warn("initd: console password recovery not offered", "device", device, "err", err)
		return false
	}
	if !asked {
		return false
	}
	note := fmt.Sprintf("requested on %s at %s", device, time.Now().UTC().Format(time.RFC3339))
	path := filepath.Join(dataDir, console.RecoveryFile)
	if err := os.WriteFile(path, []byte(note+"\n"), 0o600); err != nil {
		log.Error("initd: console password recovery", "path", path, "err", err)
		return false
	}
	log.Warn("initd: console password recovery requested at boot: the daemon clears the password", "device", device)
	return true
}
