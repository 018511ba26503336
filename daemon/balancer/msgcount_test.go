package balancer

import "testing"

func TestMsgKind(t *testing.T) {
	tests := []struct {
		first string
		label string
		resp  bool
	}{
		{"INVITE sip:a@b SIP/2.0\r\n", "INVITE", false},
		{"ACK sip:a@b SIP/2.0\r\n", "ACK", false},
		{"BYE sip:a@b SIP/2.0\r\n", "BYE", false},
		{"OPTIONS sip:a@b SIP/2.0\r\n", "OPTIONS", false},
		{"FOO sip:a@b SIP/2.0\r\n", "other", false},
		{"SIP/2.0 100 Trying\r\n", "1xx", true},
		{"SIP/2.0 200 OK\r\n", "2xx", true},
		{"SIP/2.0 486 Busy Here\r\n", "4xx", true},
		{"SIP/2.0 603 Decline\r\n", "6xx", true},
	}
	var m msgCounts
	for _, tt := range tests {
		k := msgKind([]byte(tt.first))
		if label, resp := kindLabel(k); label != tt.label || resp != tt.resp {
			t.Errorf("%q: %s/%v, want %s/%v", tt.first, label, resp, tt.label, tt.resp)
		}
		m.count([]byte(tt.first))
	}
	for _, garbage := range []string{"", "SIP/2.0 ", "SIP/2.0 900 x", "\r\n", " INVITE"} {
		if k := msgKind([]byte(garbage)); k != kindNone {
			t.Errorf("%q counted as %d", garbage, k)
		}
	}
	if got := m[0].Load(); got != 1 {
		t.Errorf("INVITE count %d, want 1", got)
	}
}
