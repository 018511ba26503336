package bundle

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
)

// ReleaseKey is the public key that signs the firmware's updates,
// base64, stamped at build time:
//
//	-ldflags "-X github.com/sipedge/sipedge/platform/bundle.ReleaseKey=..."
//
// (the Makefile's UPDATE_PUBKEY names the file holding it). A build
// without one verifies no bundle at all, except the test key's in a
// build with the sipedge_testkey tag.
var ReleaseKey = ""

// testKeyEnabled is true only in builds with the sipedge_testkey tag
// (testkey_on.go): the QEMU tests' images. A production build never
// trusts the test key.
var testKeyEnabled = false

// testSeed is the test key's private seed: public by design, so that
// anyone can build a test bundle, and therefore never trusted by a
// production build.
var testSeed = sha256.Sum256([]byte("sipedge TEST update key: never trusted by a production build"))

// TestPrivateKey is the test signing key (tests and `make update
// UPDATE_KEY=test`).
func TestPrivateKey() ed25519.PrivateKey { return ed25519.NewKeyFromSeed(testSeed[:]) }

// TestPublicKey is the test key's public half.
func TestPublicKey() ed25519.PublicKey { return TestPrivateKey().Public().(ed25519.PublicKey) }

// Key is a trusted public key.
type Key struct {
	Name string
	Pub  ed25519.PublicKey
	Test bool // the test key: a bundle it signed may carry test flags
}

// TrustedKeys are the keys this build verifies bundles with.
func TrustedKeys() ([]Key, error) {
	var keys []Key
	if ReleaseKey != "" {
		pub, err := ParsePublicKey(ReleaseKey)
		if err != nil {
			return nil, fmt.Errorf("bundle: the built-in release key: %w", err)
		}
		if pub.Equal(TestPublicKey()) {
			return nil, fmt.Errorf("bundle: the built-in release key is the public test key")
		}
		keys = append(keys, Key{Name: "release", Pub: pub})
	}
	if testKeyEnabled {
		keys = append(keys, Key{Name: "test", Pub: TestPublicKey(), Test: true})
	}
	return keys, nil
}

// ParsePublicKey reads a base64 Ed25519 public key.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("not a base64 Ed25519 public key (%d bytes, %v)", len(b), err)
	}
	return ed25519.PublicKey(b), nil
}

// ReadPrivateKey reads a signing key file: the base64 32-byte seed
// (written by WriteKeyPair). The file must be the builder's alone.
func ReadPrivateKey(path string) (ed25519.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("bundle: signing key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("bundle: signing key %s is readable by group or others (mode %04o): chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bundle: signing key: %w", err)
	}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("bundle: signing key %s: not a base64 32-byte Ed25519 seed", path)
	}
	k := ed25519.NewKeyFromSeed(seed)
	if k.Public().(ed25519.PublicKey).Equal(TestPublicKey()) {
		return nil, fmt.Errorf("bundle: signing key %s is the public test key", path)
	}
	return k, nil
}

// WriteKeyPair makes a new signing key: priv (mode 0600, never
// overwritten) and its public key pub, to stamp into builds.
func WriteKeyPair(priv, pub string) error {
	pk, sk, err := ed25519.GenerateKey(nil)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(priv, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(sk.Seed()) + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.WriteFile(pub, []byte(base64.StdEncoding.EncodeToString(pk)+"\n"), 0o644)
}

func encode(k ed25519.PublicKey) string { return base64.StdEncoding.EncodeToString(k) }
