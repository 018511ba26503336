//go:build !linux

package update

import "os"

func dropCache(*os.File) {}
