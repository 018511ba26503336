package replica

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/sipedge/sipedge/daemon/balancer"
	"github.com/sipedge/sipedge/hal/testenv"
)

// The previous release's wire, as its encoder wrote it (testdata/v1,
// made by the daemon/replica of commit 3c0e3bf with these inputs).
var (
	goldenKey    = []byte("golden-cluster-key-0123456789")
	goldenAt     = time.Unix(1796000000, 123456789)
	goldenNonceA = func() (n [nonceLen]byte) {
		for i := range n {
			n[i] = byte(i + 1)
		}
		return
	}()
	goldenNonceB = func() (n [nonceLen]byte) {
		for i := range n {
			n[i] = byte(0xa0 + i)
		}
		return
	}()
	goldenSnapshot = []record{
		{kind: balancer.DialogCreate, callID: "snap-1@192.0.2.100", core: "core1", at: goldenAt},
		{kind: balancer.DialogConfirm, callID: "snap-2@192.0.2.100", core: "core1", at: goldenAt, expires: goldenAt.Add(time.Hour), session: 1800 * time.Second},
	}
	goldenEvents = []record{
		{kind: balancer.DialogCreate, callID: "ev-1@192.0.2.100", core: "core1", at: goldenAt},
		{kind: balancer.DialogConfirm, callID: "ev-1@192.0.2.100", core: "core1", at: goldenAt, expires: goldenAt.Add(time.Hour)},
		{kind: balancer.DialogEnd, callID: "snap-1@192.0.2.100", core: "core1", at: goldenAt},
	}
	goldenCores = `[{"name":"core1","address":"198.51.100.21:5060"}]`
)

func golden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/v1/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// previousDecodeHello is the previous release's decodeHello, verbatim:
// what a box on it makes of our hellos.
func previousDecodeHello(b []byte) (node string, refuse bool, err error) {
	if len(b) < 1 || len(b) != 1+int(b[0])+2*nonceLen+1 || b[0] == 0 || int(b[0]) > maxNameLen {
		return "", false, fmt.Errorf("%w: hello of %d bytes", errBadFrame, len(b))
	}
	n := int(b[0])
	return string(b[1 : 1+n]), b[len(b)-1] == 1, nil
}

// stamps replays the send stamps of a golden stream, frame by frame.
func stamps(stream []byte) func() time.Time {
	var ts []time.Time
	for b := stream; len(b) >= headerLen; {
		ts = append(ts, time.Unix(0, int64(binary.BigEndian.Uint64(b[16:]))))
		b = b[headerLen+int(binary.BigEndian.Uint32(b[24:]))+macLen:]
	}
	return func() time.Time { t := ts[0]; ts = ts[1:]; return t }
}

// TestPreviousReleaseFrames: what the previous release sends, this one
// reads; what this one sends a previous-release peer is, byte for byte,
// what that release sent itself, except the hello's flag byte, which the
// previous release ignores unless it is exactly 1 (refuse).
func TestPreviousReleaseFrames(t *testing.T) {
	toStandby, toActive := sessionKeys(goldenKey, goldenNonceA, goldenNonceB)
	hellos := map[string]hello{
		"hello-dialler.bin":  {node: "edge-a", nonce: goldenNonceA},
		"hello-acceptor.bin": {node: "edge-b", nonce: goldenNonceB, echo: goldenNonceA},
		"hello-refuse.bin":   {node: "edge-b", nonce: goldenNonceB, echo: goldenNonceA, refuse: true},
	}
	for name, want := range hellos {
		g := golden(t, name)
		fr, err := newFramer(bytes.NewBuffer(g), goldenKey, time.Now).read(maxHelloBody)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if h, err := decodeHello(fr.body); err != nil || h != want {
			t.Errorf("%s: decoded %+v, %v; want %+v", name, h, err, want)
		}
		// Ours, to a previous-release peer: tagged unless refusing.
		var out bytes.Buffer
		f := newFramer(&out, goldenKey, stamps(g))
		mine := want
		mine.tagged = true
		f.write(frameHello, mine.encode())
		f.flush()
		ours := out.Bytes()
		if !bytes.Equal(ours[:headerLen+len(fr.body)-1], g[:headerLen+len(fr.body)-1]) {
			t.Errorf("%s: our hello differs from the previous release's before the flag byte", name)
		}
		node, refuse, err := previousDecodeHello(ours[headerLen : len(ours)-macLen])
		if err != nil || node != want.node || refuse != want.refuse {
			t.Errorf("%s: the previous release reads our hello as node %q refuse %v (%v)", name, node, refuse, err)
		}
		if want.refuse && !bytes.Equal(ours, g) {
			t.Errorf("%s: our refusing hello is not the previous release's", name)
		}
	}

	// The session toward the standby: read, then written again.
	g := golden(t, "to-standby.bin")
	f := newFramer(bytes.NewBuffer(g), goldenKey, time.Now)
	if _, err := f.read(maxHelloBody); err != nil {
		t.Fatal(err)
	}
	f.session(nil, toStandby)
	var got [][]record
	for i, typ := range []uint8{frameCores, frameSnapshot, frameSnapEnd, frameEvents} {
		fr, err := f.read(maxBody)
		if err != nil || fr.typ != typ || fr.seq != uint64(i+1) {
			t.Fatalf("frame %d: type %d seq %d, %v", i+1, fr.typ, fr.seq, err)
		}
		switch typ {
		case frameCores:
			if string(fr.body) != goldenCores {
				t.Errorf("cores %s", fr.body)
			}
		case frameSnapshot, frameEvents:
			var rs []record
			if err := decodeRecords(fr.body, false, func(r record) { rs = append(rs, r) }); err != nil {
				t.Fatal(err)
			}
			got = append(got, rs)
		}
	}
	if !reflect.DeepEqual(got, [][]record{goldenSnapshot, goldenEvents}) {
		t.Errorf("records read:\n%+v\nwant\n%+v", got, [][]record{goldenSnapshot, goldenEvents})
	}
	var out bytes.Buffer
	w := newFramer(&out, goldenKey, stamps(g))
	w.write(frameHello, hello{node: "edge-a", nonce: goldenNonceA}.encode())
	w.flush()
	w.session(toStandby, nil)
	w.write(frameCores, []byte(goldenCores))
	w.write(frameSnapshot, encodeAll(goldenSnapshot, false))
	w.write(frameSnapEnd, binary.BigEndian.AppendUint32(nil, 2))
	w.write(frameEvents, encodeAll(goldenEvents, false))
	w.flush()
	if !bytes.Equal(out.Bytes(), g) {
		t.Error("our untagged session toward a previous-release standby differs from the previous release's")
	}

	// The ack toward the active box.
	g = golden(t, "to-active.bin")
	f = newFramer(bytes.NewBuffer(g), goldenKey, time.Now)
	if _, err := f.read(maxHelloBody); err != nil {
		t.Fatal(err)
	}
	f.session(nil, toActive)
	fr, err := f.read(ackLen)
	if err != nil || fr.typ != frameAck || binary.BigEndian.Uint64(fr.body) != 1 || int64(binary.BigEndian.Uint64(fr.body[8:])) != goldenAt.UnixNano() {
		t.Errorf("ack: %+v %v", fr, err)
	}
}

// recorder is the standby's balancer, keeping what replication applied
// (the tags are checked here, not through the balancer's use of them);
// on the active side it exports records with tags.
type recorder struct {
	*balancer.Balancer
	mu     sync.Mutex
	events []balancer.DialogEvent
	snap   []balancer.DialogRecord
}

func (r *recorder) ApplyDialog(e balancer.DialogEvent) bool {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	return r.Balancer.ApplyDialog(e)
}

func (r *recorder) ReplaceDialogs(rs []balancer.DialogRecord) int {
	r.mu.Lock()
	r.snap = append(r.snap, rs...)
	r.mu.Unlock()
	return r.Balancer.ReplaceDialogs(rs)
}

func (r *recorder) ExportDialogs() []balancer.DialogRecord {
	rs := r.Balancer.ExportDialogs()
	for i := range rs {
		rs[i].CallerTag, rs[i].CalleeTag, rs[i].NextHop = "a-"+rs[i].CallID, "b-"+rs[i].CallID, "sip:caller@192.0.2.100:5080"
	}
	return rs
}

// tagsOf counts the applied events and snapshot records that carry all
// three fields.
func (r *recorder) tagsOf() (events, tagged, snap, snapTagged int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.CallerTag != "" && e.CalleeTag != "" && e.NextHop != "" {
			tagged++
		}
	}
	for _, d := range r.snap {
		if d.CallerTag != "" && d.CalleeTag != "" && d.NextHop != "" {
			snapTagged++
		}
	}
	return len(r.events), tagged, len(r.snap), snapTagged
}

// TestPairWithPreviousRelease: a box on this release pairs with one
// speaking the previous release's wire in both roles (dialog tags then
// stay behind), and two boxes on this release carry the tags.
func TestPairWithPreviousRelease(t *testing.T) {
	for _, c := range []struct {
		name                    string
		activePrev, standbyPrev bool
		wantTags                bool
	}{
		{"active new, standby previous", false, true, false},
		{"active previous, standby new", true, false, false},
		{"both new", false, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			pa, pb := testenv.FreePort(t), testenv.FreePort(t)
			la, lb := fmt.Sprintf("127.0.0.1:%d", pa), fmt.Sprintf("127.0.0.1:%d", pb)
			ra, _ := New(Options{Node: "a", Listen: la, Peer: lb, Key: []byte(key), RetryInterval: 20 * time.Millisecond, KeepAlive: 300 * time.Millisecond, previous: c.activePrev})
			rb, _ := New(Options{Node: "b", Listen: lb, Peer: la, Key: []byte(key), RetryInterval: 20 * time.Millisecond, KeepAlive: 300 * time.Millisecond, previous: c.standbyPrev})
			A := &recorder{Balancer: newBalancer(t, ra)}
			B := &recorder{Balancer: newBalancer(t, nil)}
			tagged := func(i int, k balancer.DialogEventKind) balancer.DialogEvent {
				id := fmt.Sprintf("call-%d", i)
				return balancer.DialogEvent{Kind: k, CallID: id, Core: cores[i%2].Name, At: time.Now(), Expires: time.Now().Add(time.Hour),
					CallerTag: "a-" + id, CalleeTag: "b-" + id, NextHop: "sip:caller@192.0.2.100:5080"}
			}
			for i := 0; i < 20; i++ {
				A.Balancer.ApplyDialog(tagged(i, balancer.DialogCreate))
			}
			ra.Attach(A)
			rb.Attach(B)
			runAttached(t, ra, true)
			runAttached(t, rb, false)
			eventually(t, "snapshot mirrored", 3*time.Second, func() bool { return B.Dialogs() == 20 })
			for i := 0; i < 20; i++ {
				ra.DialogEvent(tagged(i, balancer.DialogConfirm))
			}
			eventually(t, "events mirrored", 3*time.Second, func() bool { n, _, _, _ := B.tagsOf(); return n == 20 })
			n, nt, s, st := B.tagsOf()
			want := 0
			if c.wantTags {
				want = 20
			}
			if nt != want || st != want || s != 20 {
				t.Errorf("standby: %d of %d events and %d of %d snapshot records tagged, want %d", nt, n, st, s, want)
			}
			sa, sb := ra.Status(), rb.Status()
			for _, k := range []string{"rejected_bad_mac", "rejected_malformed", "rejected_sequence", "rejected_oversize", "resyncs", "refused"} {
				if sa.Counters[k]+sb.Counters[k] != 0 {
					t.Errorf("%s: A %d, B %d", k, sa.Counters[k], sb.Counters[k])
				}
			}
			if sa.Counters["sessions"] != 1 || sb.Counters["sessions"] != 1 || !sa.Connected || !sb.Connected {
				t.Errorf("sessions: A %+v, B %+v", sa, sb)
			}
		})
	}
}

// runAttached runs r (its balancer attached) until the test ends.
func runAttached(t *testing.T, r *Replica, active bool) {
	t.Helper()
	r.SetActive(active)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}
