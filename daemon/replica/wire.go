package replica

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/sipedge/sipedge/daemon/balancer"
)

// Wire format, version 1. Every frame:
//
//	header (32 bytes): "SERP", version 1, type, 2 bytes zero, sequence
//	(uint64), sent unix ns (int64), body length (uint32), 4 bytes zero
//	body
//	HMAC-SHA256 (32 bytes) of header and body
//
// The two hellos (sequence 0) are MAC'd with the cluster key; every later
// frame with the session key of its direction, its sequence exactly one
// above the previous frame's in that direction.
const (
	magic      = "SERP"
	version    = 1
	headerLen  = 32
	macLen     = sha256.Size
	nonceLen   = 16
	maxBody    = 4 << 20
	maxEvents  = 4096 // per events or snapshot frame
	helloSkew  = 30 * time.Second
	maxNameLen = 64
)

// Frame types.
const (
	frameHello    = 1 // handshake, both directions
	frameEvents   = 2 // active -> standby: dialog events
	frameCores    = 3 // active -> standby: the whole Core pool (JSON); also the keepalive
	frameSnapshot = 4 // active -> standby: dialog records of a snapshot
	frameSnapEnd  = 5 // active -> standby: the snapshot is complete (record count)
	frameAck      = 6 // standby -> active: sequence applied
)

// Errors a receiver counts by reason.
var (
	errBadMAC   = errors.New("bad MAC")
	errBadSeq   = errors.New("sequence out of order")
	errBadFrame = errors.New("malformed frame")
)

type frame struct {
	typ  uint8
	seq  uint64
	sent time.Time
	body []byte
}

// framer writes and reads MAC'd, sequenced frames on one connection.
type framer struct {
	r       *bufio.Reader
	w       *bufio.Writer
	outMAC  hash.Hash
	inMAC   hash.Hash
	outSeq  uint64
	inSeq   uint64
	hdr     [headerLen]byte
	outSum  [macLen]byte // write and read run on different goroutines
	inSum   [macLen]byte
	written uint64 // bytes
}

func newFramer(rw io.ReadWriter, key []byte) *framer {
	return &framer{r: bufio.NewReaderSize(rw, 64<<10), w: bufio.NewWriterSize(rw, 64<<10),
		outMAC: hmac.New(sha256.New, key), inMAC: hmac.New(sha256.New, key)}
}

// session switches both directions to their session keys.
func (f *framer) session(out, in []byte) {
	f.outMAC, f.inMAC = hmac.New(sha256.New, out), hmac.New(sha256.New, in)
}

// write buffers one frame; the caller flushes.
func (f *framer) write(typ uint8, body []byte) error {
	if len(body) > maxBody {
		return fmt.Errorf("frame body %d bytes, at most %d", len(body), maxBody)
	}
	seq := f.outSeq
	f.outSeq++
	h := f.hdr[:]
	copy(h, magic)
	h[4], h[5], h[6], h[7] = version, typ, 0, 0
	binary.BigEndian.PutUint64(h[8:], seq)
	binary.BigEndian.PutUint64(h[16:], uint64(time.Now().UnixNano()))
	binary.BigEndian.PutUint32(h[24:], uint32(len(body)))
	binary.BigEndian.PutUint32(h[28:], 0)
	f.outMAC.Reset()
	f.outMAC.Write(h)
	f.outMAC.Write(body)
	mac := f.outMAC.Sum(f.outSum[:0])
	f.w.Write(h)
	f.w.Write(body)
	_, err := f.w.Write(mac)
	f.written += uint64(headerLen + len(body) + macLen)
	return err
}

func (f *framer) flush() error { return f.w.Flush() }

// read returns the next frame, checked: MAC, then sequence.
func (f *framer) read() (frame, error) {
	var h [headerLen]byte
	if _, err := io.ReadFull(f.r, h[:]); err != nil {
		return frame{}, err
	}
	if string(h[:4]) != magic || h[4] != version {
		return frame{}, fmt.Errorf("%w: bad magic or version", errBadFrame)
	}
	n := binary.BigEndian.Uint32(h[24:])
	if n > maxBody {
		return frame{}, fmt.Errorf("%w: body of %d bytes", errBadFrame, n)
	}
	buf := make([]byte, int(n)+macLen)
	if _, err := io.ReadFull(f.r, buf); err != nil {
		return frame{}, err
	}
	body, mac := buf[:n], buf[n:]
	f.inMAC.Reset()
	f.inMAC.Write(h[:])
	f.inMAC.Write(body)
	if !hmac.Equal(f.inMAC.Sum(f.inSum[:0]), mac) {
		return frame{}, errBadMAC
	}
	fr := frame{typ: h[5], seq: binary.BigEndian.Uint64(h[8:]), sent: time.Unix(0, int64(binary.BigEndian.Uint64(h[16:]))), body: body}
	if fr.seq != f.inSeq {
		return frame{}, fmt.Errorf("%w: got %d, want %d", errBadSeq, fr.seq, f.inSeq)
	}
	f.inSeq++
	return fr, nil
}

// hello is a handshake message.
type hello struct {
	node   string
	nonce  [nonceLen]byte
	echo   [nonceLen]byte // the acceptor's copy of the dialler's nonce
	refuse bool           // acceptor: "I hold the VIP myself"
}

func (h hello) encode() []byte {
	b := []byte{byte(len(h.node))}
	b = append(b, h.node...)
	b = append(b, h.nonce[:]...)
	b = append(b, h.echo[:]...)
	if h.refuse {
		return append(b, 1)
	}
	return append(b, 0)
}

func decodeHello(b []byte) (hello, error) {
	var h hello
	if len(b) < 1 || len(b) != 1+int(b[0])+2*nonceLen+1 || b[0] == 0 || int(b[0]) > maxNameLen {
		return h, fmt.Errorf("%w: hello of %d bytes", errBadFrame, len(b))
	}
	n := int(b[0])
	h.node = string(b[1 : 1+n])
	copy(h.nonce[:], b[1+n:])
	copy(h.echo[:], b[1+n+nonceLen:])
	h.refuse = b[len(b)-1] == 1
	return h, nil
}

// sessionKeys derives the two directions' keys from the cluster key and
// both nonces.
func sessionKeys(key []byte, dialler, acceptor [nonceLen]byte) (toAcceptor, toDialler []byte) {
	k := func(label string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte("sipedge replica v1 " + label))
		m.Write(dialler[:])
		m.Write(acceptor[:])
		return m.Sum(nil)
	}
	return k("to-standby"), k("to-active")
}

// Dialog records and events share one binary encoding:
//
//	kind (1), Call-ID length (2), Call-ID, Core length (1), Core,
//	at/created unix ns (8), expires unix ns (8), session seconds (4)
func appendRecord(b []byte, kind balancer.DialogEventKind, callID, core string, at, expires time.Time, session time.Duration) []byte {
	if len(callID) > 0xffff {
		callID = callID[:0xffff]
	}
	if len(core) > 0xff {
		core = core[:0xff]
	}
	b = append(b, byte(kind))
	b = binary.BigEndian.AppendUint16(b, uint16(len(callID)))
	b = append(b, callID...)
	b = append(b, byte(len(core)))
	b = append(b, core...)
	b = binary.BigEndian.AppendUint64(b, uint64(unixNano(at)))
	b = binary.BigEndian.AppendUint64(b, uint64(unixNano(expires)))
	return binary.BigEndian.AppendUint32(b, uint32(session/time.Second))
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

type record struct {
	kind        balancer.DialogEventKind
	callID      string
	core        string
	at, expires time.Time
	session     time.Duration
}

// decodeRecords parses a frame body: a count (4 bytes) then the records.
func decodeRecords(b []byte, fn func(record)) error {
	if len(b) < 4 {
		return fmt.Errorf("%w: no record count", errBadFrame)
	}
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	for i := uint32(0); i < n; i++ {
		if len(b) < 3 {
			return fmt.Errorf("%w: record %d truncated", errBadFrame, i)
		}
		var r record
		r.kind = balancer.DialogEventKind(b[0])
		l := int(binary.BigEndian.Uint16(b[1:]))
		b = b[3:]
		if len(b) < l+1 {
			return fmt.Errorf("%w: record %d truncated", errBadFrame, i)
		}
		r.callID = string(b[:l])
		cl := int(b[l])
		b = b[l+1:]
		if len(b) < cl+20 {
			return fmt.Errorf("%w: record %d truncated", errBadFrame, i)
		}
		r.core = string(b[:cl])
		b = b[cl:]
		r.at = fromNano(int64(binary.BigEndian.Uint64(b)))
		r.expires = fromNano(int64(binary.BigEndian.Uint64(b[8:])))
		r.session = time.Duration(binary.BigEndian.Uint32(b[16:])) * time.Second
		b = b[20:]
		if r.kind < balancer.DialogCreate || r.kind > balancer.DialogEnd || r.callID == "" {
			return fmt.Errorf("%w: record %d: kind %d", errBadFrame, i, r.kind)
		}
		fn(r)
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errBadFrame, len(b))
	}
	return nil
}
