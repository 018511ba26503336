package app

import (
	"strings"
	"testing"

	"github.com/sipedge/sipedge/daemon/failover"
)

// A VIP holder updates only when a peer is alive to take its VIPs; a
// trial commits only with every group's peer heard.
func TestPeersDown(t *testing.T) {
	st := failover.Status{Node: "a", Groups: []failover.GroupInfo{
		{Name: "sip", Holder: "a", Peers: []failover.PeerInfo{{Node: "b", Alive: true}}},
		{Name: "db", Holder: "b", Peers: []failover.PeerInfo{{Node: "b", Alive: false}}},
	}}
	if err := peersDown(st, true); err != nil {
		t.Fatalf("holder of sip with b alive: %v", err)
	}
	if err := peersDown(st, false); err == nil || !strings.Contains(err.Error(), "no peer of VIP db heard") {
		t.Fatalf("trial health: %v", err)
	}
	st.Groups[0].Peers[0].Alive = false
	if err := peersDown(st, true); err == nil || !strings.Contains(err.Error(), "holds VIP sip and no peer is alive") {
		t.Fatalf("holder with its peer dead: %v", err)
	}
	st.Groups[0].Peers = nil
	if err := peersDown(st, true); err == nil {
		t.Fatal("holder with no peer at all allowed")
	}
}
