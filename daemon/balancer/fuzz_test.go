package balancer

import (
	"bufio"
	"bytes"
	"context"
	"net/netip"
	"testing"
)

// intakeSeeds are well-formed and malformed messages of the kinds the
// wire brings; testdata/fuzz/FuzzIntake holds more (and every crasher
// found, as a regression).
var intakeSeeds = []string{
	"INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:a@127.0.0.2>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: fuzz-1\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.2>\r\nContent-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n",
	"BYE sip:a@127.0.0.2 SIP/2.0\r\nv: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bK2\r\nf: <sip:b@x>;tag=2\r\nt: <sip:a@y>;tag=1\r\ni: fuzz-2\r\nCSeq: 2 BYE\r\nRoute: <sip:127.0.0.1;lr>, <sip:198.51.100.9;lr>\r\nl: 0\r\n\r\n",
	// Taken by the raw in-dialog path (indialog.go): Max-Forwards, a To tag, no rport.
	"BYE sip:a@127.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bK3\r\nMax-Forwards: 70\r\nFrom: <sip:b@x>;tag=2\r\nTo: <sip:a@y>;tag=1\r\nCall-ID: fuzz-3\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
	// Taken by the raw INVITE path (invitefast.go): no rport, no To tag, no Route.
	"INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK4\r\nMax-Forwards: 70\r\nFrom: <sip:a@127.0.0.2>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: fuzz-4\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.2>\r\nContent-Length: 0\r\n\r\n",
	// Behind NAT: the raw paths fill received and rport.
	"INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5070;rport;branch=z9hG4bK5\r\nMax-Forwards: 70\r\nFrom: <sip:a@192.0.2.10>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: fuzz-5\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
	"ACK sip:a@127.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>;tag=9\r\nCall-ID: fuzz-1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
	"CANCEL sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: fuzz-1\r\nCSeq: 1 CANCEL\r\n\r\n",
	"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.2\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: o\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 0\r\nContent-Length: 0\r\n\r\n",
	"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKsbdeadbeef.1\r\nVia: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>;tag=2\r\nCall-ID: fuzz-1\r\nCSeq: 1 INVITE\r\nRecord-Route: <sip:127.0.0.1;lr>\r\nContent-Length: 0\r\n\r\n",
	"INVITE sips:x@y SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: f\r\nTo: t\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 99\r\n\r\n",
	"REGISTER tel:+123 SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK\r\nCSeq: x REGISTER\r\n\r\n",
	"\r\n\r\n",
	"INVITE  SIP/2.0\r\n\r\n",
}

// FuzzIntake feeds raw bytes to what the socket readers feed: the TCP
// framing (readStreamMessage) when tcp is set, the dispatcher's Call-ID
// hash, the screen's refusal path, and the worker's handle (parse,
// validate, limits, route). Nothing may panic (handle recovers and
// counts a panic: the counter must stay at zero).
func FuzzIntake(f *testing.F) {
	for _, s := range intakeSeeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
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
