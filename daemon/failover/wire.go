package failover

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Wire format of a heartbeat, version 1 (all integers big-endian):
//
//	magic    [4]byte  "SEHB"
//	version  uint8    1
//	flags    uint8    message flags (MsgStopping)
//	node     uint8 length + bytes (1..64)
//	boot     uint64   random per process start
//	seq      uint64   strictly increasing per sender
//	time     int64    sender's wall clock, unix nanoseconds
//	ngroups  uint8    0..32
//	groups   ngroups x { name: uint8 length + bytes (1..64),
//	                     state uint8, priority uint8, flags uint8 }
//	mac      [32]byte HMAC-SHA256(key, everything before mac)
//
// Session extension: a box of this release appends one more entry to the
// groups, which a box of the previous release skips as a group it does
// not have (it ignores unknown group names), so the format stays version
// 1 and both releases pair:
//
//	name     0x00 'S' 0x01 n, then n x uint64 echo (n 0..7)
//	state    1 (init), priority 0, flags 0
//
// echo lists the boot ids of the receivers this sender has heard (the
// challenges it answers); see session.go for how a receiver uses it.
//
// Pair summary (pair.go): the sender's status summary for the peer's
// pages, opaque to this package, cut into chunks carried as more group
// entries before the session extension. Both the previous release and
// the first session release skip them as groups they do not have (the
// name starts with 0x01 'P', which Encode refuses for a group):
//
//	name     0x01 'P' index total, then up to 60 bytes of the summary
//	state    1 (init), priority 0, flags 0
//
// The summary is at most MaxSummary bytes; the chunks and the groups
// together never exceed the 32 entries every release accepts.

const (
	wireMagic   = "SEHB"
	wireVersion = 1
	macLen      = sha256.Size
	maxNameLen  = 64
	maxGroups   = 32
	// maxEcho bounds the boot ids a session extension echoes.
	maxEcho   = 7
	extHeader = "\x00S\x01"
	// sumHeader starts the name of a pair summary chunk.
	sumHeader = "\x01P"
	// sumChunk is the summary bytes one entry carries.
	sumChunk = maxNameLen - len(sumHeader) - 2
	// MaxSummary bounds the pair summary a heartbeat carries.
	MaxSummary = 16 * sumChunk
	// MaxMessageSize bounds a heartbeat on the wire.
	MaxMessageSize = 4 + 1 + 1 + 1 + maxNameLen + 8 + 8 + 8 + 1 + maxGroups*(1+maxNameLen+3) + macLen
)

// Message flags.
const (
	// MsgStopping: the sender is shutting down cleanly and has released
	// every VIP it held.
	MsgStopping uint8 = 1 << 0
)

// Group flags in a heartbeat.
const (
	// GroupMain: the sender's role for this group is main.
	GroupMain uint8 = 1 << 0
	// GroupReleased: the sender has just released the VIP; the peer
	// should take it at once.
	GroupReleased uint8 = 1 << 1
	// GroupHeld: the operator released the VIP on the sender; it does
	// not want it while another box can hold it.
	GroupHeld uint8 = 1 << 2
	// GroupTakeover: the operator asked the sender to take the VIP; the
	// holder should release it.
	GroupTakeover uint8 = 1 << 3
)

// GroupStatus is one VIP group as a heartbeat carries it.
type GroupStatus struct {
	Name     string
	State    State
	Priority uint8 // effective priority (after health penalties)
	Flags    uint8
}

// Message is a decoded heartbeat.
type Message struct {
	Node   string
	Flags  uint8
	Boot   uint64
	Seq    uint64
	Time   time.Time
	Groups []GroupStatus
	// Session: the message carries the session extension (a sender of
	// this release); false for the previous release's heartbeats.
	Session bool
	// Echo: the receivers' boot ids the sender has heard (at most 7).
	Echo []uint64
	// Summary: the sender's pair summary (at most MaxSummary bytes,
	// opaque here); nil from a sender that sends none.
	Summary []byte
}

// Decode errors; each maps to a rejection reason.
var (
	ErrMalformed = errors.New("malformed heartbeat")
	ErrVersion   = errors.New("unsupported heartbeat version")
	ErrBadMAC    = errors.New("heartbeat authentication failed")
)

// Encode serialises m and appends its HMAC under key.
func Encode(m *Message, key []byte) ([]byte, error) {
	if l := len(m.Node); l == 0 || l > maxNameLen {
		return nil, fmt.Errorf("encode heartbeat: node id length %d out of 1..%d", l, maxNameLen)
	}
	chunks := summaryChunks(len(m.Summary))
	if len(m.Summary) > MaxSummary {
		return nil, fmt.Errorf("encode heartbeat: pair summary of %d bytes, at most %d", len(m.Summary), MaxSummary)
	}
	if n := maxGroups - boolInt(m.Session) - chunks; len(m.Groups) > n {
		return nil, fmt.Errorf("encode heartbeat: %d groups, at most %d beside a %d-byte summary", len(m.Groups), n, len(m.Summary))
	}
	if len(m.Echo) > maxEcho || (!m.Session && len(m.Echo) > 0) {
		return nil, fmt.Errorf("encode heartbeat: %d echoed boot ids, at most %d, with the session extension", len(m.Echo), maxEcho)
	}
	b := make([]byte, 0, 64+len(m.Groups)*24)
	b = append(b, wireMagic...)
	b = append(b, wireVersion, m.Flags, byte(len(m.Node)))
	b = append(b, m.Node...)
	b = binary.BigEndian.AppendUint64(b, m.Boot)
	b = binary.BigEndian.AppendUint64(b, m.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Time.UnixNano()))
	b = append(b, byte(len(m.Groups)+chunks+boolInt(m.Session)))
	for _, g := range m.Groups {
		if l := len(g.Name); l == 0 || l > maxNameLen {
			return nil, fmt.Errorf("encode heartbeat: group name length %d out of 1..%d", l, maxNameLen)
		}
		if strings.HasPrefix(g.Name, sumHeader) {
			return nil, fmt.Errorf("encode heartbeat: group name %q starts like a pair summary chunk", g.Name)
		}
		b = append(b, byte(len(g.Name)))
		b = append(b, g.Name...)
		b = append(b, byte(g.State), g.Priority, g.Flags)
	}
	for i := 0; i < chunks; i++ {
		part := m.Summary[i*sumChunk : min((i+1)*sumChunk, len(m.Summary))]
		b = append(b, byte(len(sumHeader)+2+len(part)))
		b = append(b, sumHeader...)
		b = append(b, byte(i), byte(chunks))
		b = append(b, part...)
		b = append(b, byte(StateInit), 0, 0)
	}
	if m.Session {
		b = append(b, byte(len(extHeader)+1+8*len(m.Echo)))
		b = append(b, extHeader...)
		b = append(b, byte(len(m.Echo)))
		for _, e := range m.Echo {
			b = binary.BigEndian.AppendUint64(b, e)
		}
		b = append(b, byte(StateInit), 0, 0)
	}
	return macAppend(b, key), nil
}

// summaryChunks is the number of entries a summary of n bytes takes.
func summaryChunks(n int) int { return (n + sumChunk - 1) / sumChunk }

// decodeSummary appends a summary chunk (name, state, priority, flags as
// read) to m.Summary: chunks come in order, all with the same total.
func decodeSummary(m *Message, g GroupStatus, total *int) error {
	name := g.Name
	if len(name) < len(sumHeader)+2 || g.State != StateInit || g.Priority != 0 || g.Flags != 0 {
		return errors.New("pair summary chunk: short, or nonzero state, priority or flags")
	}
	idx, n := int(name[len(sumHeader)]), int(name[len(sumHeader)+1])
	want := summaryChunks(len(m.Summary))
	if n == 0 || n > summaryChunks(MaxSummary) || idx != want || (*total != 0 && n != *total) {
		return fmt.Errorf("pair summary chunk %d of %d out of order", idx, n)
	}
	if idx > 0 && len(m.Summary) != idx*sumChunk {
		return fmt.Errorf("pair summary chunk %d after a short chunk", idx)
	}
	*total = n
	m.Summary = append(m.Summary, name[len(sumHeader)+2:]...)
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// decodeExt parses a session extension entry (name, state, priority,
// flags as read) into m.
func decodeExt(m *Message, g GroupStatus) error {
	name := g.Name
	if len(name) < len(extHeader)+1 || name[:len(extHeader)] != extHeader {
		return fmt.Errorf("unknown extension %x", name)
	}
	n := int(name[len(extHeader)])
	rest := name[len(extHeader)+1:]
	if n > maxEcho || len(rest) != 8*n {
		return fmt.Errorf("session extension: %d echoes in %d bytes", n, len(rest))
	}
	if g.State != StateInit || g.Priority != 0 || g.Flags != 0 {
		return errors.New("session extension: nonzero state, priority or flags")
	}
	m.Session = true
	for i := 0; i < n; i++ {
		m.Echo = append(m.Echo, binary.BigEndian.Uint64([]byte(rest[8*i:])))
	}
	return nil
}

// macAppend appends HMAC-SHA256(key, b) to b.
func macAppend(b, key []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write(b)
	return mac.Sum(b)
}

// Decode verifies b's MAC under key and parses it. It checks structure
// and authenticity only; freshness (sequence, time window) is the
// receiver's business (see sessions).
func Decode(b []byte, key []byte) (*Message, error) {
	if len(b) < len(wireMagic)+3+macLen || len(b) > MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	if string(b[:4]) != wireMagic {
		return nil, fmt.Errorf("%w: bad magic", ErrMalformed)
	}
	if b[4] != wireVersion {
		return nil, fmt.Errorf("%w: %d", ErrVersion, b[4])
	}
	body, sum := b[:len(b)-macLen], b[len(b)-macLen:]
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), sum) {
		return nil, ErrBadMAC
	}
	r := reader{b: body[5:]}
	m := &Message{}
	m.Flags = r.u8()
	m.Node = r.name()
	m.Boot = r.u64()
	m.Seq = r.u64()
	m.Time = time.Unix(0, int64(r.u64()))
	n := int(r.u8())
	if r.err == nil && n > maxGroups {
		return nil, fmt.Errorf("%w: %d groups", ErrMalformed, n)
	}
	sumTotal := 0
	for i := 0; i < n && r.err == nil; i++ {
		g := GroupStatus{Name: r.name()}
		g.State = State(r.u8())
		g.Priority = r.u8()
		g.Flags = r.u8()
		if r.err == nil && !g.State.valid() {
			return nil, fmt.Errorf("%w: group %q state %d", ErrMalformed, g.Name, g.State)
		}
		if r.err == nil && g.Name[0] == 0 {
			// The session extension: always the last entry.
			if i != n-1 {
				return nil, fmt.Errorf("%w: extension before the last group", ErrMalformed)
			}
			if err := decodeExt(m, g); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
			}
			continue
		}
		if r.err == nil && strings.HasPrefix(g.Name, sumHeader) {
			if err := decodeSummary(m, g, &sumTotal); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
			}
			continue
		}
		if sumTotal != 0 {
			return nil, fmt.Errorf("%w: group %q after the pair summary", ErrMalformed, g.Name)
		}
		m.Groups = append(m.Groups, g)
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, r.err)
	}
	if sumTotal != summaryChunks(len(m.Summary)) {
		return nil, fmt.Errorf("%w: pair summary: %d of %d chunks", ErrMalformed, summaryChunks(len(m.Summary)), sumTotal)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(r.b))
	}
	return m, nil
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = errors.New("short message")
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() uint8 {
	v := r.take(1)
	if v == nil {
		return 0
	}
	return v[0]
}

func (r *reader) u64() uint64 {
	v := r.take(8)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func (r *reader) name() string {
	n := int(r.u8())
	if r.err == nil && (n == 0 || n > maxNameLen) {
		r.err = fmt.Errorf("name length %d", n)
		return ""
	}
	return string(r.take(n))
}
