// Package version holds the firmware version, stamped at build time with
// -ldflags "-X github.com/sipedge/sipedge/daemon/version.Version=...
// -X github.com/sipedge/sipedge/daemon/version.Build=...".
package version

import (
	"runtime"
	"strconv"

	"github.com/sipedge/sipedge/platform/bundle"
)

// Version is the firmware version (from git describe at build time).
var Version = "dev"

// Build is the build number (git rev-list --count HEAD at build time):
// it orders builds of the same tag, and builds of an untagged tree.
var Build = "0"

// Ordered is the version updates compare: the tag's numbers (v0.0.0 if
// git describe gave a bare hash) and the build number, "v1.2.3+45".
func Ordered() bundle.Version {
	n, _ := strconv.Atoi(Build)
	return bundle.FromDescribe(Version, n)
}

// Go is the Go toolchain the binary was built with.
func Go() string { return runtime.Version() }
