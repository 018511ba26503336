package app

import (
	"slices"
	"testing"

	"github.com/sipedge/sipedge/daemon/config"
)

// TestHealthListener: a VIP group tracking `sip_options: local` makes the
// balancer listen on loopback at its UDP port, where the check probes,
// unless a configured listener already answers there.
func TestHealthListener(t *testing.T) {
	local := []config.Track{{SIPOptions: "local"}}
	for _, tt := range []struct {
		name   string
		listen []string
		track  []config.Track
		want   string
	}{
		{"on the VIP", []string{"udp:192.0.2.10:5060", "tcp:192.0.2.10:5060"}, local, "udp:127.0.0.1:5060"},
		{"first udp port", []string{"tcp:192.0.2.10:5070", "udp:192.0.2.10:5080", "udp:192.0.2.10:5090"}, local, "udp:127.0.0.1:5080"},
		{"already on loopback", []string{"udp:127.0.0.1:5060"}, local, ""},
		{"wildcard", []string{"udp:0.0.0.0:5060"}, local, ""},
		{"loopback on another port", []string{"udp:192.0.2.10:5060", "udp:127.0.0.1:5070"}, local, "udp:127.0.0.1:5060"},
		{"not tracked", []string{"udp:192.0.2.10:5060"}, []config.Track{{TCP: "127.0.0.1:3306"}}, ""},
		{"another box's balancer", []string{"udp:192.0.2.10:5060"}, []config.Track{{SIPOptions: "192.0.2.12:5060"}}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &config.Config{SIP: &config.SIP{Listen: tt.listen}, VIPs: []config.VIP{{Name: "sip", Track: tt.track}}}
			if got := healthListener(cfg); got != tt.want {
				t.Fatalf("healthListener = %q, want %q", got, tt.want)
			}
			opt := BalancerOptions(cfg)
			want := tt.listen
			if tt.want != "" {
				want = append(slices.Clone(tt.listen), tt.want)
			}
			if !slices.Equal(opt.Listen, want) {
				t.Fatalf("balancer listens on %v, want %v", opt.Listen, want)
			}
			if tt.want != "" {
				target, err := localSIP(cfg)
				if err != nil || "udp:"+target != tt.want {
					t.Fatalf("check probes %q (%v), balancer listens on %q", target, err, tt.want)
				}
			}
		})
	}
}
