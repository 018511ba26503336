// Package bundle is sipedge's signed firmware update: one file holding a
// manifest (board, version, build time, the oldest version it may
// replace, each part's size and SHA-256, test flags), the manifest's
// Ed25519 signature and the parts. `make update` writes one
// (scripts/mkupdate); daemon/update installs it.
//
// Layout: the 16-byte Magic, the manifest's length (uint32, big endian,
// at most MaxManifest), the manifest (JSON), the 64-byte signature of
// everything before it, then the parts in manifest order. Nothing is
// trusted before the signature is checked: the manifest's length is
// bounded first, the parts' sizes by MaxPart, and each part's bytes are
// hashed as they stream to where they go (Part).
package bundle

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"
)

// Magic starts every bundle.
const Magic = "SIPEDGE-BUNDLE1\n"

// Limits checked before anything is trusted.
const (
	MaxManifest = 64 << 10
	MaxPart     = 1 << 30
	MaxParts    = 8
)

// Errors a caller may tell apart (errors.Is).
var (
	ErrSignature = errors.New("bad signature")
	ErrBoard     = errors.New("bundle for another board")
	ErrOlder     = errors.New("older than the running firmware")
	ErrChanged   = errors.New("part changed")
	ErrFormat    = errors.New("not a sipedge update bundle")
)

// Manifest describes a bundle.
type Manifest struct {
	Format     int       `json:"format"`
	Board      string    `json:"board"`
	Version    string    `json:"version"`     // vMAJOR.MINOR.PATCH+BUILD
	Built      time.Time `json:"built"`       // the source date (SOURCE_DATE_EPOCH)
	MinVersion string    `json:"min_version"` // the oldest running version it may replace
	Parts      []Part    `json:"parts"`
	// Test flags make a good build misbehave on its trial boot, for the
	// rollback tests. Honoured only in a bundle signed by the test key
	// (never trusted by a production build).
	Test *TestFlags `json:"test,omitempty"`
}

// Part is one file of the bundle.
type Part struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// TestFlags are the rollback tests' misbehaviours.
type TestFlags struct {
	ExitAtStart bool `json:"exit_at_start,omitempty"` // the daemon exits at once
	HangAtStart bool `json:"hang_at_start,omitempty"` // the daemon hangs before it feeds the watchdog
}

// Input is a part to write into a bundle.
type Input struct {
	Name string
	Data []byte
}

// Write signs m, with its parts' sizes and hashes filled from parts, and
// writes the bundle to w.
func Write(w io.Writer, m Manifest, parts []Input, key ed25519.PrivateKey) error {
	m.Format = 1
	m.Parts = nil
	for _, p := range parts {
		sum := sha256.Sum256(p.Data)
		m.Parts = append(m.Parts, Part{Name: p.Name, Size: int64(len(p.Data)), SHA256: hex.EncodeToString(sum[:])})
	}
	if err := m.valid(); err != nil {
		return err
	}
	js, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if len(js) > MaxManifest {
		return fmt.Errorf("bundle: manifest of %d bytes, at most %d", len(js), MaxManifest)
	}
	var head bytes.Buffer
	head.WriteString(Magic)
	binary.Write(&head, binary.BigEndian, uint32(len(js)))
	head.Write(js)
	head.Write(ed25519.Sign(key, head.Bytes()))
	if _, err := w.Write(head.Bytes()); err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := w.Write(p.Data); err != nil {
			return err
		}
	}
	return nil
}

func (m *Manifest) valid() error {
	if m.Format != 1 {
		return fmt.Errorf("bundle: manifest format %d, this firmware reads 1", m.Format)
	}
	if m.Board == "" {
		return errors.New("bundle: manifest names no board")
	}
	if _, err := ParseVersion(m.Version); err != nil {
		return err
	}
	if _, err := ParseVersion(m.MinVersion); err != nil {
		return fmt.Errorf("bundle: min_version: %w", err)
	}
	if len(m.Parts) == 0 || len(m.Parts) > MaxParts {
		return fmt.Errorf("bundle: %d parts, want 1 to %d", len(m.Parts), MaxParts)
	}
	for _, p := range m.Parts {
		if p.Name == "" || p.Size <= 0 || p.Size > MaxPart || len(p.SHA256) != 64 {
			return fmt.Errorf("bundle: bad part %q (size %d)", p.Name, p.Size)
		}
		if _, err := hex.DecodeString(p.SHA256); err != nil {
			return fmt.Errorf("bundle: part %q: sha256: %w", p.Name, err)
		}
	}
	return nil
}

// Header is a bundle's verified manifest.
type Header struct {
	Manifest
	Key    Key   // the key that signed it
	Length int64 // bytes of the header: the first part starts here
}

// ReadHeader reads the manifest and checks its signature against keys.
// It reads at most len(Magic)+4+MaxManifest+64 bytes.
func ReadHeader(r io.Reader, keys []Key) (*Header, error) {
	var pre [len(Magic) + 4]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, fmt.Errorf("bundle: %w: %v", ErrFormat, err)
	}
	if string(pre[:len(Magic)]) != Magic {
		return nil, fmt.Errorf("bundle: %w (no magic)", ErrFormat)
	}
	n := binary.BigEndian.Uint32(pre[len(Magic):])
	if n == 0 || n > MaxManifest {
		return nil, fmt.Errorf("bundle: %w: manifest of %d bytes (at most %d)", ErrFormat, n, MaxManifest)
	}
	body := make([]byte, int(n)+ed25519.SignatureSize)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("bundle: %w: truncated manifest: %v", ErrFormat, err)
	}
	signed := append(pre[:], body[:n]...)
	sig := body[n:]
	if len(keys) == 0 {
		return nil, fmt.Errorf("bundle: %w: this firmware has no update key built in", ErrSignature)
	}
	var by *Key
	for i := range keys {
		if ed25519.Verify(keys[i].Pub, signed, sig) {
			by = &keys[i]
			break
		}
	}
	if by == nil {
		return nil, fmt.Errorf("bundle: %w: not signed by a key this firmware trusts", ErrSignature)
	}
	h := &Header{Key: *by, Length: int64(len(signed) + len(sig))}
	dec := json.NewDecoder(bytes.NewReader(body[:n]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h.Manifest); err != nil {
		return nil, fmt.Errorf("bundle: manifest: %w", err)
	}
	if err := h.valid(); err != nil {
		return nil, err
	}
	if h.Test != nil && !by.Test {
		return nil, fmt.Errorf("bundle: test flags in a bundle signed by the %s key", by.Name)
	}
	return h, nil
}

// Check refuses a bundle for another board, or older than running
// (unless force), or that may not replace running (min_version).
func (h *Header) Check(board string, running Version, force bool) error {
	if h.Board != board {
		return fmt.Errorf("bundle: %w: it is for %q, this box is %q", ErrBoard, h.Board, board)
	}
	v, _ := ParseVersion(h.Version)
	min, _ := ParseVersion(h.MinVersion)
	if force {
		return nil
	}
	if v.Compare(running) < 0 {
		return fmt.Errorf("bundle: %w: %s is older than the running %s (force to downgrade)", ErrOlder, v, running)
	}
	if running.Compare(min) < 0 {
		return fmt.Errorf("bundle: %s may only replace %s or newer, this box runs %s", v, min, running)
	}
	return nil
}

// Part returns a reader of part i's bytes from r (positioned at the
// part), which fails at its end with ErrChanged if the bytes do not hash
// to the manifest's SHA-256.
func (h *Header) Part(r io.Reader, i int) io.Reader {
	p := h.Parts[i]
	return &partReader{r: io.LimitReader(r, p.Size), h: sha256.New(), p: p}
}

type partReader struct {
	r    io.Reader
	h    hash.Hash
	p    Part
	n    int64
	done bool
}

func (pr *partReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.h.Write(b[:n])
	pr.n += int64(n)
	if err == io.EOF {
		if pr.n != pr.p.Size {
			return n, fmt.Errorf("bundle: part %s: %w: truncated at %d of %d bytes", pr.p.Name, ErrChanged, pr.n, pr.p.Size)
		}
		if got := hex.EncodeToString(pr.h.Sum(nil)); got != pr.p.SHA256 {
			return n, fmt.Errorf("bundle: part %s: %w: sha256 %s, the manifest says %s", pr.p.Name, ErrChanged, got, pr.p.SHA256)
		}
	}
	return n, err
}
