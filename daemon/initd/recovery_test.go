package initd

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/console"
)

func TestRequestRecovery(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, tt := range []struct {
		name  string
		asked bool
		err   error
		want  bool
	}{
		{"key pressed", true, nil, true},
		{"no key", false, nil, false},
		{"port unusable", false, errors.New("no such device"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			offer := func(_ context.Context, device string, baud int, window time.Duration) (bool, error) {
				if device != "/dev/ttyS0" || baud != 115200 || window != RecoveryWindow {
					t.Errorf("offered on %s at %d for %v", device, baud, window)
				}
				return tt.asked, tt.err
			}
			got := requestRecovery(context.Background(), dir, "/dev/ttyS0", 115200, offer, log)
			b, err := os.ReadFile(filepath.Join(dir, console.RecoveryFile))
			if got != tt.want || (err == nil) != tt.want {
				t.Fatalf("requested %v, file %q (%v)", got, b, err)
			}
			if tt.want {
				fi, _ := os.Stat(filepath.Join(dir, console.RecoveryFile))
				if !strings.Contains(string(b), "requested on /dev/ttyS0 at ") || fi.Mode().Perm() != 0o600 {
					t.Errorf("request %q mode %v", b, fi.Mode())
				}
			}
		})
	}
}
