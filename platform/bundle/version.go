package bundle

import (
	"fmt"
	"regexp"
	"strconv"
)

// Version orders firmware: the tag vMAJOR.MINOR.PATCH, then the build
// number (the count of commits, which grows with every build of the
// branch). It is written "v1.2.3+45".
type Version struct {
	Major, Minor, Patch, Build int
}

func (v Version) String() string {
	return fmt.Sprintf("v%d.%d.%d+%d", v.Major, v.Minor, v.Patch, v.Build)
}

// Compare returns -1, 0 or +1 as v is older than, the same as or newer
// than w.
func (v Version) Compare(w Version) int {
	for _, d := range [][2]int{{v.Major, w.Major}, {v.Minor, w.Minor}, {v.Patch, w.Patch}, {v.Build, w.Build}} {
		switch {
		case d[0] < d[1]:
			return -1
		case d[0] > d[1]:
			return 1
		}
	}
	return 0
}

var versionRE = regexp.MustCompile(`^v(\d{1,6})\.(\d{1,6})\.(\d{1,6})\+(\d{1,9})$`)

// ParseVersion reads "v1.2.3+45".
func ParseVersion(s string) (Version, error) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return Version{}, fmt.Errorf("bundle: version %q is not vMAJOR.MINOR.PATCH+BUILD", s)
	}
	var n [4]int
	for i := range n {
		n[i], _ = strconv.Atoi(m[i+1])
	}
	return Version{n[0], n[1], n[2], n[3]}, nil
}

var describeRE = regexp.MustCompile(`^v(\d{1,6})\.(\d{1,6})\.(\d{1,6})(?:[-+.].*)?$`)

// FromDescribe is the version of a build from `git describe --tags
// --always --dirty` and the build number (`git rev-list --count HEAD`).
// A repository without a tag describes itself as a bare hash: that is
// v0.0.0, ordered by its build number alone.
func FromDescribe(describe string, build int) Version {
	v := Version{Build: build}
	if m := describeRE.FindStringSubmatch(describe); m != nil {
		v.Major, _ = strconv.Atoi(m[1])
		v.Minor, _ = strconv.Atoi(m[2])
		v.Patch, _ = strconv.Atoi(m[3])
	}
	return v
}
