package app

import (
	"testing"

	"github.com/sipedge/sipedge/daemon/config"
)

// TestRawPathsOption: sip.raw_paths reaches the balancer as FullPath:
// absent or true keeps the raw paths (a config that worked keeps its
// behaviour), false takes every message through the full path.
func TestRawPathsOption(t *testing.T) {
	for _, tt := range []struct {
		line string
		full bool
	}{{"", false}, {"  raw_paths: true\n", false}, {"  raw_paths: false\n", true}} {
		cfg, err := config.Parse("test.yaml", []byte("sip:\n  listen: [\"udp:127.0.0.1:5060\"]\n"+tt.line))
		if err != nil {
			t.Fatalf("%q: %v", tt.line, err)
		}
		if got := BalancerOptions(cfg).FullPath; got != tt.full {
			t.Errorf("%q: FullPath %v, want %v", tt.line, got, tt.full)
		}
	}
}
