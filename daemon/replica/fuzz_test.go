package replica

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/balancer"
)

// goldenBodies are the frame bodies of the golden v1 streams, as fuzz
// seeds.
func goldenBodies(f *testing.F) [][]byte {
	var out [][]byte
	files, _ := filepath.Glob("testdata/v1/*.bin")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for len(b) >= headerLen+macLen {
			n := int(uint32(b[24])<<24 | uint32(b[25])<<16 | uint32(b[26])<<8 | uint32(b[27]))
			if len(b) < headerLen+n+macLen {
				break
			}
			out = append(out, b[headerLen:headerLen+n])
			b = b[headerLen+n+macLen:]
		}
	}
	return out
}

// FuzzDecodeHello: any bytes decode to a hello within bounds or to an
// error; a decoded hello encodes back to the same bytes, its flag byte
// aside (normalised: refuse alone, else the tagged flag).
func FuzzDecodeHello(f *testing.F) {
	for _, b := range goldenBodies(f) {
		f.Add(b)
	}
	f.Add(hello{node: "edge-a", tagged: true}.encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeHello(b)
		if err != nil {
			return
		}
		if h.node == "" || len(h.node) > maxNameLen || len(b) > maxHelloBody {
			t.Fatalf("hello of %d bytes, node of %d accepted", len(b), len(h.node))
		}
		e := h.encode()
		if !bytes.Equal(e[:len(e)-1], b[:len(b)-1]) {
			t.Fatalf("re-encoded %x, read %x", e, b)
		}
		if g, err := decodeHello(e); err != nil || g.node != h.node || g.nonce != h.nonce || g.echo != h.echo || g.refuse != h.refuse {
			t.Fatalf("round trip %+v -> %+v %v", h, g, err)
		}
	})
}

// FuzzDecodeRecords: any body, tagged or not, decodes to records within
// bounds or to an error, without a panic; decoded records encode back to
// exactly the body they came from.
func FuzzDecodeRecords(f *testing.F) {
	for _, b := range goldenBodies(f) {
		f.Add(b, false)
	}
	f.Add(encodeAll(goldenEvents, true), true)
	f.Add(encodeAll([]record{{kind: 2, callID: "x", core: "core1", at: time.Unix(1, 0), callerTag: "a", calleeTag: "b", nextHop: "sip:x@192.0.2.1"}}, true), true)
	f.Fuzz(func(t *testing.T, b []byte, tagged bool) {
		var rs []record
		err := decodeRecords(b, tagged, func(r record) {
			if len(r.callerTag) > maxTagLen || len(r.calleeTag) > maxTagLen || len(r.nextHop) > maxHopLen || r.callID == "" {
				t.Fatalf("record out of bounds: %+v", r)
			}
			rs = append(rs, r)
		})
		if err != nil {
			return
		}
		if e := encodeAll(rs, tagged); !bytes.Equal(e, b) {
			t.Fatalf("re-encoded %x, read %x", e, b)
		}
	})
}

// FuzzFrameRead: a byte stream read as frames (a hello under the hello
// limit, then session frames) never panics and never yields a frame
// longer than its limit or one with a bad MAC.
func FuzzFrameRead(f *testing.F) {
	for _, name := range []string{"to-standby.bin", "to-active.bin", "hello-dialler.bin"} {
		b, err := os.ReadFile("testdata/v1/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr := newFramer(bytes.NewBuffer(b), goldenKey, time.Now)
		h, err := fr.read(maxHelloBody)
		if err != nil {
			return
		}
		if len(h.body) > maxHelloBody {
			t.Fatalf("hello body of %d bytes read", len(h.body))
		}
		toStandby, _ := sessionKeys(goldenKey, goldenNonceA, goldenNonceB)
		fr.session(nil, toStandby)
		for i := 0; i < 8; i++ {
			if _, err := fr.read(maxBody); err != nil {
				return
			}
		}
	})
}

// encodeAll makes one records body of rs, however many.
func encodeAll(rs []record, tagged bool) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(rs)))
	for i := range rs {
		b = rs[i].append(b, tagged)
	}
	return b
}

// BenchmarkEncodeEvents: one full events frame body (4096 confirms), in
// the previous release's form and tagged (tags and next hop as SIPp
// makes them).
func BenchmarkEncodeEvents(b *testing.B) {
	evs := make([]balancer.DialogEvent, maxEvents)
	for i := range evs {
		evs[i] = balancer.DialogEvent{Kind: balancer.DialogConfirm, CallID: fmt.Sprintf("%d-12345@192.0.2.100", i), Core: "core1",
			At: time.Now(), Expires: time.Now().Add(time.Hour), CallerTag: fmt.Sprintf("12345SIPpTag00%d", i), CalleeTag: fmt.Sprintf("12345SIPpTag01%d", i),
			NextHop: "sip:sipp@192.0.2.100:5080"}
	}
	for _, tagged := range []bool{false, true} {
		b.Run(fmt.Sprintf("tagged=%v", tagged), func(b *testing.B) {
			var n int
			for b.Loop() {
				n = 0
				encodeFrames(evs, tagged, eventRecord, func(body []byte) error { n += len(body); return nil })
			}
			b.ReportMetric(float64(n)/maxEvents, "bytes/event")
		})
	}
}

// TestFramesBounded: records too long to fit 4096 in a frame are split
// by size, every body under maxBody, and decode to the records given.
func TestFramesBounded(t *testing.T) {
	long := strings.Repeat("x", 900)
	evs := make([]balancer.DialogEvent, 2*maxEvents+7)
	for i := range evs {
		evs[i] = balancer.DialogEvent{Kind: balancer.DialogCreate, CallID: fmt.Sprintf("%d-%s", i, long), Core: "core1",
			CallerTag: strings.Repeat("a", maxTagLen), CalleeTag: strings.Repeat("b", maxTagLen), NextHop: "sip:" + strings.Repeat("h", maxHopLen-4)}
	}
	var got []balancer.DialogEvent
	frames := 0
	err := encodeFrames(evs, true, eventRecord, func(body []byte) error {
		frames++
		if len(body) > maxBody {
			t.Fatalf("frame %d: body of %d bytes", frames, len(body))
		}
		return decodeRecords(body, true, func(r record) { got = append(got, r.event()) })
	})
	if err != nil || !reflect.DeepEqual(got, evs) {
		t.Fatalf("%d events back of %d (%v)", len(got), len(evs), err)
	}
	t.Logf("%d events of %d bytes in %d frames", len(evs), len(encodeAll([]record{eventRecord(&evs[0])}, true))-4, frames)
}
