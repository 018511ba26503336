package image

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// File is one entry of the initramfs.
type File struct {
	Path  string // without leading slash, e.g. "init", "lib/modules/tls.ko"
	Mode  uint32 // type and permission bits, e.g. ModeDir|0o755
	Data  []byte // regular files and symlink targets
	Major uint32 // device nodes
	Minor uint32
}

// cpio newc mode type bits.
const (
	ModeDir  = 0o040000
	ModeFile = 0o100000
	ModeChar = 0o020000
	ModeLink = 0o120000
)

// WriteCPIO writes files as a cpio "newc" archive with every variable
// normalised: sorted by path, mtime 0, owner root, inode numbers in
// order, so that the same files give the same bytes.
func WriteCPIO(w io.Writer, files []File) error {
	fs := append([]File(nil), files...)
	sort.Slice(fs, func(i, j int) bool { return fs[i].Path < fs[j].Path })
	for i := 1; i < len(fs); i++ {
		if fs[i].Path == fs[i-1].Path {
			return fmt.Errorf("cpio: %s twice", fs[i].Path)
		}
	}
	ino := uint32(1)
	for _, f := range fs {
		p := strings.TrimPrefix(f.Path, "/")
		if p == "" {
			return fmt.Errorf("cpio: empty path")
		}
		nlink := uint32(1)
		if f.Mode&0o170000 == ModeDir {
			nlink = 2
		}
		if err := writeEntry(w, ino, f.Mode, nlink, f.Major, f.Minor, p, f.Data); err != nil {
			return err
		}
		ino++
	}
	return writeEntry(w, 0, 0, 1, 0, 0, "TRAILER!!!", nil)
}

func writeEntry(w io.Writer, ino, mode, nlink, major, minor uint32, name string, data []byte) error {
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, len(data), 0, 0, major, minor, len(name)+1, 0)
	b := []byte(hdr)
	b = append(b, name...)
	b = append(b, 0)
	b = pad4(b)
	b = append(b, data...)
	b = pad4(b)
	_, err := w.Write(b)
	return err
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
