package balancer

import (
	"bytes"
	"sync/atomic"
)

// countedMethods are the request methods counted by name; others count
// as "other".
var countedMethods = [...]string{"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "UPDATE", "INFO", "REFER", "NOTIFY", "SUBSCRIBE", "MESSAGE", "PUBLISH"}

const (
	kindOther = len(countedMethods) // a request of another method
	kindResp  = kindOther + 1       // kindResp+0..5: 1xx..6xx
	nKinds    = kindResp + 6        // kinds counted
	kindNone  = -1                  // neither (garbage)
)

// msgCounts counts messages by method (requests) or class (responses).
type msgCounts [nKinds]atomic.Uint64

// count adds one message, classified from its first line: a few byte
// comparisons, no parse.
func (m *msgCounts) count(data []byte) {
	if k := msgKind(data); k != kindNone {
		m[k].Add(1)
	}
}

func msgKind(data []byte) int {
	if bytes.HasPrefix(data, []byte("SIP/2.0 ")) {
		if len(data) > 8 && data[8] >= '1' && data[8] <= '6' {
			return kindResp + int(data[8]-'1')
		}
		return kindNone
	}
	sp := bytes.IndexByte(data, ' ')
	if sp <= 0 {
		return kindNone
	}
	for i, m := range countedMethods {
		if string(data[:sp]) == m {
			return i
		}
	}
	return kindOther
}

// kindLabel names a kind for metrics: the method, "other", or "2xx".
func kindLabel(k int) (label string, response bool) {
	switch {
	case k < kindOther:
		return countedMethods[k], false
	case k == kindOther:
		return "other", false
	default:
		return string(rune('1'+k-kindResp)) + "xx", true
	}
}
