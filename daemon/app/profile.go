package app

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"time"
)

// writeProfile writes a pprof profile of the running daemon to path.
// kind "cpu" samples for d (at most 120 s); the others are snapshots.
func writeProfile(ctx context.Context, kind string, d time.Duration, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer f.Close()
	if kind == "cpu" {
		if d <= 0 || d > 120*time.Second {
			return fmt.Errorf("profile: cpu seconds must be 1..120")
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("profile: %w", err)
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
		pprof.StopCPUProfile()
		return nil
	}
	p := pprof.Lookup(kind)
	if p == nil {
		return fmt.Errorf("profile: unknown kind %q (cpu, heap, allocs, goroutine)", kind)
	}
	return p.WriteTo(f, 0)
}
