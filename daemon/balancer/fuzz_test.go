package balancer

import (
	"bufio"
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// intakeSeeds are well-formed and malformed messages of the kinds the
// wire brings, one file each under testdata/intake (raw INVITE, BYE and
// ACK paths, NAT, a Core's 200, sips and tel URIs, garbage);
// testdata/fuzz/FuzzIntake holds more (and every crasher found, as a
// regression).
func intakeSeeds(tb testing.TB) [][]byte {
	files, err := filepath.Glob("testdata/intake/*.sip")
	if err != nil || len(files) == 0 {
		tb.Fatalf("intake seeds: %v (%d files)", err, len(files))
	}
	var out [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// FuzzIntake feeds raw bytes to what the socket readers feed: the TCP
// framing (readStreamMessage) when tcp is set, the dispatcher's Call-ID
// hash, the screen's refusal path, and the worker's handle (parse,
// validate, limits, route). Nothing may panic (handle recovers and
// counts a panic: the counter must stay at zero).
func FuzzIntake(f *testing.F) {
	for _, s := range intakeSeeds(f) {
		f.Add(s, false)
		f.Add(s, true)
	}
	b, err := New(Options{
		Listen:      []string{"udp:127.0.0.1:0", "tcp:127.0.0.1:0"},
		Cores:       []CoreConfig{{Name: "c1", Address: "127.0.0.1:9"}, {Name: "c2", Address: "tcp:127.0.0.1:9"}},
		MaxHeaders:  32,
		MaxURIBytes: 64,
	})
	if err != nil {
		f.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { b.Close() })
	var udp, tcp *listener
	for _, l := range b.listeners {
		if l.transport == "udp" {
			udp = l
		} else {
			tcp = l
		}
	}
	src := netip.MustParseAddrPort("127.0.0.2:9")
	f.Fuzz(func(t *testing.T, data []byte, stream bool) {
		msgs := [][]byte{data}
		lis := udp
		if stream {
			lis, msgs = tcp, nil
			r := bufio.NewReaderSize(bytes.NewReader(data), 16384)
			for len(msgs) < 8 {
				m, err := readStreamMessage(r, b.opt.MaxMessageBytes, nil)
				if err != nil {
					break
				}
				if len(m) > b.opt.MaxMessageBytes {
					t.Fatalf("stream framing returned %d bytes over the %d limit", len(m), b.opt.MaxMessageBytes)
				}
				msgs = append(msgs, m)
			}
		}
		for _, m := range msgs {
			in := inbound{data: m, src: src, lis: lis}
			callIDHash(m)
			b.screened(in, Verdict{Code: 403, Reason: "Forbidden"})
			b.handle(in)
		}
		if n := b.stats.Panics.Load(); n != 0 {
			t.Fatalf("intake panicked (%d) on %q", n, data)
		}
	})
}
