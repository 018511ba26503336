package cli

import (
	"reflect"
	"testing"
)

// TestAddCoreParams: `ctl cores add` takes a tls: or DNS-name address and
// a tls_name= anywhere after the name; bad numbers are refused.
func TestAddCoreParams(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want map[string]any
		bad  bool
	}{
		{args: []string{"c1", "198.51.100.21:5060"}, want: map[string]any{"name": "c1", "address": "198.51.100.21:5060"}},
		{args: []string{"c2", "tls:198.51.100.22:5061", "tls_name=core2.example.net", "2"},
			want: map[string]any{"name": "c2", "address": "tls:198.51.100.22:5061", "tls_name": "core2.example.net", "weight": 2}},
		{args: []string{"grp", "cores.example.net", "1", "100"}, want: map[string]any{"name": "grp", "address": "cores.example.net", "weight": 1, "max_calls": 100}},
		{args: []string{"c3", "198.51.100.23:5060", "-1"}, bad: true},
		{args: []string{"c4", "tls_name=x.example.net"}, bad: true},
	} {
		got, err := addCoreParams(tc.args)
		if (err != nil) != tc.bad {
			t.Errorf("%v: error %v, want error %v", tc.args, err, tc.bad)
			continue
		}
		if !tc.bad && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v: %v, want %v", tc.args, got, tc.want)
		}
	}
}
