//go:build !linux

package console

import (
	"errors"
	"os"
)

type termState struct{}

func isTerminal(*os.File) bool { return false }

func makeRawish(*os.File) (*termState, error) {
	return nil, errors.New("console: raw mode needs Linux")
}

func restoreTerm(*os.File, *termState) error { return nil }

func setCooked(*os.File) error { return nil }

func setLine(*os.File, int) error { return errors.New("console: serial lines need Linux") }
