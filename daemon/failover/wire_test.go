package failover

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleMessage() *Message {
	return &Message{Node: "edge-a", Flags: MsgStopping, Boot: 0xdeadbeef, Seq: 42,
		Time: time.Unix(0, 1735787045123456789),
		Groups: []GroupStatus{
			{Name: "sip", State: StateMaster, Priority: 150, Flags: GroupMain},
			{Name: "db", State: StateBackup, Priority: 100, Flags: GroupHeld | GroupReleased},
		}}
}

func TestWireRoundTrip(t *testing.T) {
	m := sampleMessage()
	b, err := Encode(m, testKey)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b, testKey)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, m)
	}
	// The golden file pins the format: a change of layout must bump the
	// version.
	golden := filepath.Join("testdata", "heartbeat-v1.bin")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(golden, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("encoding differs from %s (format change without a version bump?)", golden)
	}
}

func TestDecodeRejects(t *testing.T) {
	good, err := Encode(sampleMessage(), testKey)
	if err != nil {
		t.Fatal(err)
	}
	resign := func(body []byte) []byte {
		// Re-sign a tampered body with the right key: structure errors
		// must be caught after authentication too.
		return signed(body)
	}
	body := good[:len(good)-macLen]
	flip := append([]byte(nil), good...)
	flip[10] ^= 1
	badState := append([]byte(nil), body...)
	badState[len(badState)-3] = 9 // last group's state
	tooMany := append([]byte(nil), body...)
	tooMany[4+1+1+1+len("edge-a")+24] = 33
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"short", good[:20], ErrMalformed},
		{"magic", append([]byte("XXXX"), good[4:]...), ErrMalformed},
		{"version", append([]byte("SEHB\x02"), good[5:]...), ErrVersion},
		{"flipped-bit", flip, ErrBadMAC},
		{"wrong-key", func() []byte { b, _ := Encode(sampleMessage(), []byte("another key of 16+ bytes")); return b }(), ErrBadMAC},
		{"truncated-mac", good[:len(good)-1], ErrBadMAC},
		{"oversize", make([]byte, MaxMessageSize+1), ErrMalformed},
		{"bad-state-signed", resign(badState), ErrMalformed},
		{"too-many-groups-signed", resign(tooMany), ErrMalformed},
		{"trailing-signed", resign(append(append([]byte(nil), body...), 0)), ErrMalformed},
		{"short-body-signed", resign(body[:30]), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.b, testKey)
			if !errors.Is(err, tc.want) {
				t.Errorf("Decode = %v, want %v", err, tc.want)
			}
		})
	}
}

func signed(body []byte) []byte {
	// Same MAC construction as Encode.
	b := append([]byte(nil), body...)
	return macAppend(b, testKey)
}

func TestEncodeRejectsBadInput(t *testing.T) {
	long := string(bytes.Repeat([]byte("n"), 65))
	for _, m := range []*Message{
		{Node: ""},
		{Node: long},
		{Node: "a", Groups: []GroupStatus{{Name: ""}}},
		{Node: "a", Groups: make([]GroupStatus, 33)},
	} {
		if _, err := Encode(m, testKey); err == nil {
			t.Errorf("Encode(%+v) succeeded", m)
		}
	}
}

// FuzzDecode: Decode never panics, and whatever it accepts re-encodes to
// the same bytes.
func FuzzDecode(f *testing.F) {
	good, _ := Encode(sampleMessage(), testKey)
	f.Add(good)
	sess := sampleMessage()
	sess.Session, sess.Echo = true, []uint64{1, 2}
	withExt, _ := Encode(sess, testKey)
	f.Add(withExt)
	sess.Summary = []byte(strings.Repeat("s", 70))
	withSum, _ := Encode(sess, testKey)
	f.Add(withSum)
	f.Add(good[:len(good)-macLen])
	f.Add([]byte("SEHB\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, in := range [][]byte{b, signed(b)} {
			m, err := Decode(in, testKey)
			if err != nil {
				continue
			}
			out, err := Encode(m, testKey)
			if err != nil {
				t.Fatalf("accepted message does not encode: %v", err)
			}
			if !bytes.Equal(out, in) {
				t.Fatalf("re-encoding differs:\n in %x\nout %x", in, out)
			}
		}
	})
}

// TestWireSessionGolden pins the session extension's bytes (the
// previous release reads them as one more group it does not have:
// TestNetnsMixedVersions runs it).
func TestWireSessionGolden(t *testing.T) {
	m := sampleMessage()
	m.Session, m.Echo = true, []uint64{0x0102030405060708, 42}
	b, err := Encode(m, testKey)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b, testKey)
	if err != nil || !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	golden := filepath.Join("testdata", "heartbeat-v1-session.bin")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(golden, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("encoding differs from %s", golden)
	}
	// The extension is the last group entry: count 3, then
	// 0x00 'S' 0x01 n echoes, state init, priority 0, flags 0.
	body := b[:len(b)-macLen]
	ext := append([]byte{byte(len(extHeader) + 1 + 16)}, extHeader...)
	ext = append(ext, 2, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 42, byte(StateInit), 0, 0)
	if !bytes.HasSuffix(body, ext) {
		t.Errorf("body ends %x, want %x", body[len(body)-len(ext):], ext)
	}
	// Misplaced or malformed extensions are refused.
	two := append([]byte(nil), body...)
	two[4+1+1+1+len("edge-a")+24]++ // one more "group": the extension is no longer last
	for name, bad := range map[string][]byte{
		"not last":  signed(append(two, ext...)),
		"bad state": signed(append(append([]byte(nil), body[:len(body)-3]...), byte(StateMaster), 0, 0)),
	} {
		if _, err := Decode(bad, testKey); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Decode = %v, want malformed", name, err)
		}
	}
}

// TestWireSummary: a pair summary of any size up to MaxSummary travels
// in chunks before the session extension and comes back whole; the
// layout is what both earlier releases skip (group entries whose names
// they do not have); disordered or oversized summaries are refused.
func TestWireSummary(t *testing.T) {
	for _, n := range []int{1, sumChunk - 1, sumChunk, sumChunk + 1, 500, MaxSummary} {
		m := sampleMessage()
		m.Session, m.Echo = true, []uint64{7}
		m.Summary = bytes.Repeat([]byte{'x'}, n)
		m.Summary[n-1] = 'z'
		b, err := Encode(m, testKey)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if len(b) > MaxMessageSize {
			t.Fatalf("%d bytes: heartbeat of %d bytes, above %d", n, len(b), MaxMessageSize)
		}
		got, err := Decode(b, testKey)
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Fatalf("%d bytes: round trip %v", n, err)
		}
		// What an earlier release sees: every entry a group with a name of
		// 1..64 bytes and a valid state; the summary chunks are names no
		// configured group has (they start with 0x01).
		r := reader{b: b[5 : len(b)-macLen]}
		r.u8()
		r.name()
		r.u64()
		r.u64()
		r.u64()
		entries := int(r.u8())
		chunks := 0
		for i := 0; i < entries; i++ {
			name := r.name()
			st := State(r.u8())
			r.u8()
			r.u8()
			if r.err != nil || !st.valid() {
				t.Fatalf("%d bytes: entry %d unreadable by the previous release: %v state %d", n, i, r.err, st)
			}
			if strings.HasPrefix(name, sumHeader) {
				chunks++
			}
		}
		if entries > maxGroups || chunks != summaryChunks(n) || len(r.b) != 0 {
			t.Fatalf("%d bytes: %d entries, %d chunks, %d bytes left", n, entries, chunks, len(r.b))
		}
	}
	m := sampleMessage()
	m.Summary = make([]byte, MaxSummary+1)
	if _, err := Encode(m, testKey); err == nil {
		t.Error("a summary above MaxSummary was encoded")
	}
	m.Summary = make([]byte, MaxSummary)
	m.Groups = make([]GroupStatus, maxGroups-summaryChunks(MaxSummary)+1)
	for i := range m.Groups {
		m.Groups[i] = GroupStatus{Name: fmt.Sprint("g", i), State: StateBackup}
	}
	if _, err := Encode(m, testKey); err == nil {
		t.Error("groups and summary chunks above 32 entries were encoded")
	}
	if _, err := Encode(&Message{Node: "a", Groups: []GroupStatus{{Name: sumHeader + "x", State: StateBackup}}}, testKey); err == nil {
		t.Error("a group named like a summary chunk was encoded")
	}

	// Chunks out of order, short in the middle, or a group after them.
	chunk := func(idx, total byte, payload string) []byte {
		e := []byte{byte(len(sumHeader) + 2 + len(payload))}
		e = append(e, sumHeader...)
		e = append(e, idx, total)
		e = append(e, payload...)
		return append(e, byte(StateInit), 0, 0)
	}
	group := append(append([]byte{2}, "gg"...), byte(StateBackup), 0, 0)
	full := strings.Repeat("y", sumChunk)
	base, _ := Encode(&Message{Node: "edge-a", Boot: 1, Seq: 2, Time: time.Unix(0, 3)}, testKey)
	head := base[:len(base)-macLen-1] // up to the entry count
	for name, entries := range map[string][][]byte{
		"second first":        {chunk(1, 2, "b"), chunk(0, 2, full)},
		"short middle":        {chunk(0, 2, "a"), chunk(1, 2, "b")},
		"missing last":        {chunk(0, 2, full)},
		"totals differ":       {chunk(0, 2, full), chunk(1, 3, "b")},
		"group after summary": {chunk(0, 1, "a"), group},
		"empty":               {chunk(0, 1, "")},
		"too many":            {chunk(0, 17, full)},
	} {
		b := append(append([]byte(nil), head...), byte(len(entries)))
		for _, e := range entries {
			b = append(b, e...)
		}
		if _, err := Decode(signed(b), testKey); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Decode = %v, want malformed", name, err)
		}
	}
	ok := append(append([]byte(nil), head...), 3)
	ok = append(append(append(ok, group...), chunk(0, 2, full)...), chunk(1, 2, "b")...)
	if got, err := Decode(signed(ok), testKey); err != nil || string(got.Summary) != full+"b" || len(got.Groups) != 1 {
		t.Errorf("a well-formed summary was refused: %v", err)
	}
}
