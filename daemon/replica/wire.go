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
	"slices"
	"time"
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
//
// A reader is told the largest body it takes before it reads a frame: a
// longer one closes the connection before anything is allocated for it.
// Before the session keys exist only a hello is read (maxHelloBody).
const (
	magic        = "SERP"
	version      = 1
	headerLen    = 32
	macLen       = sha256.Size
	nonceLen     = 16
	maxBody      = 4 << 20
	maxEvents    = 4096 // per events or snapshot frame
	maxNameLen   = 64
	maxHelloBody = 1 + maxNameLen + 2*nonceLen + 1
	ackLen       = 16

	// Buffers: small until the session keys exist, so that a connection
	// that has proven nothing holds little memory.
	handshakeBuf = 512
	sessionBuf   = 64 << 10
)

// Frame types. A previous-release receiver drops the session on a type it
// does not know, so the tagged types go only to a peer whose hello
// announced helloTagged.
const (
	frameHello          = 1 // handshake, both directions
	frameEvents         = 2 // active -> standby: dialog events
	frameCores          = 3 // active -> standby: the whole Core pool (JSON); also the keepalive
	frameSnapshot       = 4 // active -> standby: dialog records of a snapshot
	frameSnapEnd        = 5 // active -> standby: the snapshot is complete (record count)
	frameAck            = 6 // standby -> active: sequence applied
	frameEventsTagged   = 7 // as frameEvents, records with tags and next hop
	frameSnapshotTagged = 8 // as frameSnapshot, records with tags and next hop
)

// Errors a receiver counts by reason.
var (
	errBadMAC   = errors.New("bad MAC")
	errBadSeq   = errors.New("sequence out of order")
	errBadFrame = errors.New("malformed frame")
	errTooLong  = fmt.Errorf("%w: over the length limit", errBadFrame)
)

type frame struct {
	typ  uint8
	seq  uint64
	sent time.Time
	body []byte
}

// framer writes and reads MAC'd, sequenced frames on one connection.
type framer struct {
	rw      io.ReadWriter
	now     func() time.Time // the send stamp's clock
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

func newFramer(rw io.ReadWriter, key []byte, now func() time.Time) *framer {
	return &framer{rw: rw, now: now, r: bufio.NewReaderSize(rw, handshakeBuf), w: bufio.NewWriterSize(rw, handshakeBuf),
		outMAC: hmac.New(sha256.New, key), inMAC: hmac.New(sha256.New, key)}
}

// session switches both directions to their session keys and the
// buffers to their session size. The writer must have been flushed.
func (f *framer) session(out, in []byte) {
	f.outMAC, f.inMAC = hmac.New(sha256.New, out), hmac.New(sha256.New, in)
	f.r = bufio.NewReaderSize(f.r, sessionBuf) // keeps what the small one holds
	f.w = bufio.NewWriterSize(f.rw, sessionBuf)
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
	binary.BigEndian.PutUint64(h[16:], uint64(f.now().UnixNano()))
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

// read returns the next frame, checked: length (at most limit), MAC,
// then sequence. The body's memory grows with the bytes that arrive, not
// with the length the header claims.
func (f *framer) read(limit int) (frame, error) {
	var h [headerLen]byte
	if _, err := io.ReadFull(f.r, h[:]); err != nil {
		return frame{}, err
	}
	if string(h[:4]) != magic || h[4] != version {
		return frame{}, fmt.Errorf("%w: bad magic or version", errBadFrame)
	}
	n := binary.BigEndian.Uint32(h[24:])
	if uint64(n) > uint64(limit) {
		return frame{}, fmt.Errorf("%w: type %d body of %d bytes, at most %d here", errTooLong, h[5], n, limit)
	}
	buf, err := readN(f.r, int(n)+macLen)
	if err != nil {
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

// readN reads n bytes, growing the buffer by at most 64 KiB ahead of
// what has arrived.
func readN(r io.Reader, n int) ([]byte, error) {
	const step = 64 << 10
	buf := make([]byte, 0, min(n, step))
	for len(buf) < n {
		k := min(n-len(buf), step)
		buf = slices.Grow(buf, k)
		m, err := io.ReadFull(r, buf[len(buf):len(buf)+k])
		buf = buf[:len(buf)+m]
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// Hello flags, the hello's last byte. The previous release reads the
// byte as "refuse" when it is exactly 1 and ignores it otherwise, so a
// refusing hello is always exactly 1 and capabilities ride only on a
// hello that does not refuse.
const (
	helloRefuse = 1 << 0 // acceptor: "I hold the VIP myself"
	helloTagged = 1 << 1 // the sender reads frameEventsTagged and frameSnapshotTagged
)

// hello is a handshake message.
type hello struct {
	node   string
	nonce  [nonceLen]byte
	echo   [nonceLen]byte // the acceptor's copy of the dialler's nonce
	refuse bool           // acceptor: "I hold the VIP myself"
	tagged bool           // reads tagged records
}

func (h hello) encode() []byte {
	b := []byte{byte(len(h.node))}
	b = append(b, h.node...)
	b = append(b, h.nonce[:]...)
	b = append(b, h.echo[:]...)
	switch {
	case h.refuse:
		return append(b, helloRefuse)
	case h.tagged:
		return append(b, helloTagged)
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
	flags := b[len(b)-1]
	h.refuse = flags&helloRefuse != 0
	h.tagged = flags&helloTagged != 0
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
