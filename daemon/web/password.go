package web

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// PasswordIterations is the PBKDF2-SHA256 work factor of new hashes
// (OWASP's 2023 figure). Verification uses the count stored with the hash.
const PasswordIterations = 600_000

// MinPasswordLen and MaxPasswordLen bound a web password (in characters).
const (
	MinPasswordLen = 8
	MaxPasswordLen = 256
)

// PasswordAlgo names the hash scheme stored with a Hash.
const PasswordAlgo = "pbkdf2-sha256"

// Hash is a stored password: never the password itself.
type Hash struct {
	Algo       string    `json:"algo"`
	Iterations int       `json:"iterations"`
	Salt       []byte    `json:"salt"`
	Sum        []byte    `json:"sum"`
	Set        time.Time `json:"set"`
}

// CheckPassword tells why pw is not acceptable as a web password.
func CheckPassword(pw string) error {
	n := utf8.RuneCountInString(pw)
	switch {
	case !utf8.ValidString(pw):
		return errors.New("password is not valid UTF-8")
	case n < MinPasswordLen:
		return fmt.Errorf("password too short: at least %d characters", MinPasswordLen)
	case n > MaxPasswordLen:
		return fmt.Errorf("password too long: at most %d characters", MaxPasswordLen)
	}
	return nil
}

// NewHash hashes pw with a fresh salt and the given iteration count
// (0: PasswordIterations).
func NewHash(pw string, iterations int) (Hash, error) {
	if err := CheckPassword(pw); err != nil {
		return Hash{}, err
	}
	if iterations <= 0 {
		iterations = PasswordIterations
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return Hash{}, fmt.Errorf("password salt: %w", err)
	}
	sum, err := pbkdf2.Key(sha256.New, pw, salt, iterations, 32)
	if err != nil {
		return Hash{}, fmt.Errorf("password hash: %w", err)
	}
	return Hash{Algo: PasswordAlgo, Iterations: iterations, Salt: salt, Sum: sum, Set: time.Now().UTC()}, nil
}

// Verify reports whether pw matches h, comparing in constant time.
func (h Hash) Verify(pw string) bool {
	if h.Algo != PasswordAlgo || h.Iterations <= 0 || len(h.Salt) == 0 || len(h.Sum) == 0 || len(pw) > 4*MaxPasswordLen {
		return false
	}
	sum, err := pbkdf2.Key(sha256.New, pw, h.Salt, h.Iterations, len(h.Sum))
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(sum, h.Sum) == 1
}
