package hal

import (
	"errors"
	"testing"
)

func TestWatchdogBootStatus(t *testing.T) {
	tests := []struct {
		dev       string
		want      bool
		unsupport bool
	}{
		{"/dev/watchdog", true, false},
		{"/dev/watchdog0", true, false},
		{"/dev/watchdog1", false, false},
		{"/dev/watchdog7", false, true},
	}
	for _, tt := range tests {
		got, err := WatchdogBootStatus("testdata/sys", tt.dev)
		if tt.unsupport {
			if !errors.Is(err, ErrUnsupported) {
				t.Errorf("%s: err = %v, want ErrUnsupported", tt.dev, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: got %v, %v; want %v", tt.dev, got, err, tt.want)
		}
	}
}
