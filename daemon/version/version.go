// Package version holds the firmware version, stamped at build time with
// -ldflags "-X github.com/sipedge/sipedge/daemon/version.Version=...".
package version

import "runtime"

// Version is the firmware version (from git describe at build time).
var Version = "dev"

// Go is the Go toolchain the binary was built with.
func Go() string { return runtime.Version() }
