package image

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// rootfsFiles lists the files under rootfs as image entries (owned by
// root) and adds its directories to dirs. Secrets stay secret: a file
// the builder's tree keeps from group and others (no read bit for
// them), or a key by its name (*.key, *.pem), is 0600 (0700 if
// executable) in the image, whatever the umask of the checkout made of
// it; everything else is 0644 or 0755.
func rootfsFiles(rootfs string, dirs map[string]bool) ([]File, error) {
	var files []File
	err := filepath.WalkDir(rootfs, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == rootfs {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, rootfs+string(filepath.Separator)))
		if d.IsDir() {
			dirs[rel] = true
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return fmt.Errorf("%s: not a regular file (%s)", rel, info.Mode().Type())
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files = append(files, File{Path: rel, Mode: ModeFile | rootfsMode(rel, info.Mode().Perm()), Data: b})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("image: rootfs: %w", err)
	}
	return files, nil
}

// rootfsMode is a rootfs file's permission bits in the image.
func rootfsMode(rel string, perm fs.FileMode) uint32 {
	exec := perm&0o111 != 0
	secret := perm&0o044 == 0 || IsSecret(rel)
	switch {
	case secret && exec:
		return 0o700
	case secret:
		return 0o600
	case exec:
		return 0o755
	}
	return 0o644
}

// IsSecret tells a key file by its name: *.key, *.pem.
func IsSecret(rel string) bool {
	switch strings.ToLower(filepath.Ext(rel)) {
	case ".key", ".pem":
		return true
	}
	return false
}

// secretFile is the file at src as the image entry dst, mode 0600. A
// source that group or others may read is refused: the secret has
// already leaked on the build host.
func secretFile(src, dst string) (File, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return File{}, fmt.Errorf("image: %s: %w", dst, err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return File{}, fmt.Errorf("image: %s: %s is readable by group or others (mode %04o): chmod 600 it, or make a new one (sipedge ctl cluster keygen)", dst, src, perm)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return File{}, fmt.Errorf("image: %s: %w", dst, err)
	}
	return File{Path: dst, Mode: ModeFile | 0o600, Data: b}, nil
}
