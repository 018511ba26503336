package bundle

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

var (
	_, otherKey, _ = ed25519.GenerateKey(nil)
	releasePriv    = func() ed25519.PrivateKey { _, k, _ := ed25519.GenerateKey(nil); return k }()
	releaseKeys    = []Key{{Name: "release", Pub: releasePriv.Public().(ed25519.PublicKey)}}
)

func sample(t *testing.T, key ed25519.PrivateKey, edit func(*Manifest)) []byte {
	t.Helper()
	m := Manifest{Board: "qemu-x86_64", Version: "v1.2.0+40", MinVersion: "v1.0.0+0", Built: time.Unix(1700000000, 0).UTC()}
	if edit != nil {
		edit(&m)
	}
	var b bytes.Buffer
	if err := Write(&b, m, []Input{{"slot.img", []byte("kernel and initramfs")}, {"notes", []byte("n")}}, key); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// readAll verifies a whole bundle as the installer does.
func readAll(b []byte, keys []Key, board string, running Version, force bool) error {
	r := bytes.NewReader(b)
	h, err := ReadHeader(r, keys)
	if err != nil {
		return err
	}
	if err := h.Check(board, running, force); err != nil {
		return err
	}
	for i := range h.Parts {
		if _, err := io.Copy(io.Discard, h.Part(r, i)); err != nil {
			return err
		}
	}
	return nil
}

var running = Version{1, 1, 0, 30}

func TestGoodBundle(t *testing.T) {
	b := sample(t, releasePriv, nil)
	if err := readAll(b, releaseKeys, "qemu-x86_64", running, false); err != nil {
		t.Fatal(err)
	}
	h, _ := ReadHeader(bytes.NewReader(b), releaseKeys)
	if h.Version != "v1.2.0+40" || len(h.Parts) != 2 || h.Parts[0].Size != 20 || h.Key.Name != "release" {
		t.Fatalf("%+v", h)
	}
}

func TestRefusals(t *testing.T) {
	good := sample(t, releasePriv, nil)
	flip := func(at int) []byte {
		b := bytes.Clone(good)
		b[at] ^= 1
		return b
	}
	idx := bytes.Index(good, []byte(`"board"`))
	tests := []struct {
		name    string
		b       []byte
		keys    []Key
		board   string
		run     Version
		force   bool
		want    error
		wantMsg string
	}{
		{"signed by another key", sample(t, otherKey, nil), releaseKeys, "qemu-x86_64", running, false, ErrSignature, "not signed by a key this firmware trusts"},
		{"no key built in", good, nil, "qemu-x86_64", running, false, ErrSignature, "no update key"},
		{"manifest byte changed", flip(idx + 3), releaseKeys, "qemu-x86_64", running, false, ErrSignature, ""},
		{"signature byte changed", flip(len(good) - 21 - 1), releaseKeys, "qemu-x86_64", running, false, ErrSignature, ""},
		{"part byte changed", flip(len(good) - 3), releaseKeys, "qemu-x86_64", running, false, ErrChanged, "sha256"},
		{"part truncated", good[:len(good)-5], releaseKeys, "qemu-x86_64", running, false, ErrChanged, "truncated"},
		{"other board", good, releaseKeys, "generic-x86_64", running, false, ErrBoard, `for "qemu-x86_64"`},
		{"older", good, releaseKeys, "qemu-x86_64", Version{1, 2, 0, 41}, false, ErrOlder, "older than the running v1.2.0+41"},
		{"older tag, higher build", good, releaseKeys, "qemu-x86_64", Version{1, 3, 0, 1}, false, ErrOlder, ""},
		{"not a bundle", []byte("#!/bin/sh\nrm -rf /\n........"), releaseKeys, "qemu-x86_64", running, false, ErrFormat, "no magic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := readAll(tt.b, tt.keys, tt.board, tt.run, tt.force)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err = %v, want %v %q", err, tt.want, tt.wantMsg)
			}
		})
	}
	// Forced: the downgrade goes through, the board check does not yield.
	if err := readAll(good, releaseKeys, "qemu-x86_64", Version{1, 2, 0, 41}, true); err != nil {
		t.Fatalf("forced downgrade: %v", err)
	}
	if err := readAll(good, releaseKeys, "generic-x86_64", running, true); !errors.Is(err, ErrBoard) {
		t.Fatalf("forced other board: %v", err)
	}
	// min_version: a box too old for this bundle.
	if err := readAll(good, releaseKeys, "qemu-x86_64", Version{0, 9, 0, 99}, false); err == nil || !strings.Contains(err.Error(), "may only replace v1.0.0+0 or newer") {
		t.Fatalf("min_version: %v", err)
	}
}

func TestBoundedBeforeTrust(t *testing.T) {
	// A length field of 4 GiB is refused before anything is allocated.
	var b bytes.Buffer
	b.WriteString(Magic)
	binary.Write(&b, binary.BigEndian, uint32(0xffffffff))
	if _, err := ReadHeader(&b, releaseKeys); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "at most 65536") {
		t.Fatalf("err = %v", err)
	}
	// A signed manifest with a part larger than MaxPart.
	m := Manifest{Format: 1, Board: "b", Version: "v1.0.0+1", MinVersion: "v0.0.0+0", Parts: []Part{{Name: "x", Size: MaxPart + 1, SHA256: strings.Repeat("0", 64)}}}
	if err := m.valid(); err == nil {
		t.Fatal("oversized part accepted")
	}
}

func TestTestFlagsNeedTheTestKey(t *testing.T) {
	flags := func(m *Manifest) { m.Test = &TestFlags{ExitAtStart: true} }
	if _, err := ReadHeader(bytes.NewReader(sample(t, releasePriv, flags)), releaseKeys); err == nil || !strings.Contains(err.Error(), "test flags in a bundle signed by the release key") {
		t.Fatalf("err = %v", err)
	}
	testKeys := []Key{{Name: "test", Pub: TestPublicKey(), Test: true}}
	h, err := ReadHeader(bytes.NewReader(sample(t, TestPrivateKey(), flags)), testKeys)
	if err != nil || !h.Test.ExitAtStart {
		t.Fatalf("%v %+v", err, h)
	}
}

func TestProductionBuildDistrustsTestKey(t *testing.T) {
	if testKeyEnabled {
		t.Skip("built with sipedge_testkey")
	}
	keys, err := TrustedKeys()
	if err != nil {
		t.Fatal(err)
	}
	if err := readAll(sample(t, TestPrivateKey(), nil), keys, "qemu-x86_64", running, false); !errors.Is(err, ErrSignature) {
		t.Fatalf("a test-signed bundle verified in a production build: %v", err)
	}
	old := ReleaseKey
	defer func() { ReleaseKey = old }()
	ReleaseKey = "Zm9v"
	if _, err := TrustedKeys(); err == nil {
		t.Fatal("a bad release key accepted")
	}
	ReleaseKey = "" + encode(TestPublicKey())
	if _, err := TrustedKeys(); err == nil || !strings.Contains(err.Error(), "public test key") {
		t.Fatalf("the test key as release key: %v", err)
	}
}

func TestVersions(t *testing.T) {
	for _, tt := range []struct {
		describe string
		build    int
		want     string
	}{
		{"v1.2.3", 7, "v1.2.3+7"},
		{"v1.2.3-5-gabcdef0-dirty", 12, "v1.2.3+12"},
		{"e81049f", 311, "v0.0.0+311"},
		{"dev", 0, "v0.0.0+0"},
	} {
		if got := FromDescribe(tt.describe, tt.build).String(); got != tt.want {
			t.Errorf("FromDescribe(%q, %d) = %s, want %s", tt.describe, tt.build, got, tt.want)
		}
		if v, err := ParseVersion(tt.want); err != nil || v.String() != tt.want {
			t.Errorf("ParseVersion(%s) = %v %v", tt.want, v, err)
		}
	}
	order := []string{"v0.0.0+311", "v0.9.9+400", "v1.0.0+2", "v1.0.0+10", "v1.0.1+3", "v2.0.0+1"}
	for i := 1; i < len(order); i++ {
		a, _ := ParseVersion(order[i-1])
		b, _ := ParseVersion(order[i])
		if a.Compare(b) != -1 || b.Compare(a) != 1 || a.Compare(a) != 0 {
			t.Errorf("%s vs %s", a, b)
		}
	}
	for _, bad := range []string{"1.2.3+4", "v1.2+4", "v1.2.3", "v1.2.3+x"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
