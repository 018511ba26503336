package config

import "testing"

func TestReplicationDefaults(t *testing.T) {
	tests := []struct {
		file         string
		on           bool
		listen, peer string
	}{
		{"testdata/good-ha-pair.yaml", true, "192.0.2.11:695", "192.0.2.12:695"},
		{"testdata/good-ha-pair-replication.yaml", true, "192.0.2.12:7000", "192.0.2.11:7000"},
		{"testdata/good-db-four-box.yaml", false, "", ""}, // no sip: nothing to mirror
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c, err := Load(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			r := c.Cluster.Replication
			if r.On() != tt.on || (tt.on && (r.Listen != tt.listen || r.Peer != tt.peer)) {
				t.Errorf("replication = on %v %+v, want on %v listen %s peer %s", r.On(), r, tt.on, tt.listen, tt.peer)
			}
			// What `ctl config show` prints loads back the same.
			b, err := Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			c2, err := Parse("shown", b)
			if err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			if r2 := c2.Cluster.Replication; r2.On() != r.On() || r2.Listen != r.Listen || r2.Peer != r.Peer || r2.Port != r.Port {
				t.Errorf("round trip: %+v, want %+v", r2, r)
			}
		})
	}
}
