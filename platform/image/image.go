// Package image builds sipedge's appliance image: Debian's kernel
// (fetched with apt-get download, extracted with dpkg-deb -x into a
// cache) and a gzip'd cpio "newc" initramfs holding the static sipedge
// binary as /init, the board profile's kernel modules (flat, in
// /lib/modules) and the rootfs/ tree. The initramfs is reproducible:
// building twice gives identical bytes.
package image

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sipedge/sipedge/platform"
)

// Options for Build.
type Options struct {
	Binary   string // static sipedge binary, becomes /init
	Profile  string // board profile name
	CacheDir string // downloads and the extracted kernel (gitignored)
	RootFS   string // tree copied into the image (may be empty)
	OutDir   string // where vmlinuz and initramfs are written
	// ClusterKey, if set, is a cluster key file (sipedge ctl cluster
	// keygen) put in the image as ClusterKeyPath, mode 0600: both boxes
	// of a pair flashed from the image share it.
	ClusterKey string
}

// ClusterKeyPath is where Options.ClusterKey goes in the image.
const ClusterKeyPath = "etc/sipedge/cluster.key"

// Result names what Build wrote.
type Result struct {
	Kernel    string // vmlinuz path
	Initramfs string
	Cmdline   string // the profile's kernel command line
	Modules   []string
}

// Build fetches the kernel if needed and writes OutDir/vmlinuz and
// OutDir/initramfs-<profile>.cpio.gz.
func Build(o Options) (*Result, error) {
	prof, err := platform.Lookup(o.Profile)
	if err != nil {
		return nil, err
	}
	k, err := FetchKernel(o.CacheDir)
	if err != nil {
		return nil, err
	}
	files, mods, err := Files(o.Binary, prof, k.ModuleRoot, o.RootFS)
	if err != nil {
		return nil, err
	}
	if o.ClusterKey != "" {
		f, err := secretFile(o.ClusterKey, ClusterKeyPath)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	var raw bytes.Buffer
	if err := WriteCPIO(&raw, files); err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(raw.Bytes())
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, err
	}
	res := &Result{
		Kernel:    filepath.Join(o.OutDir, "vmlinuz"),
		Initramfs: filepath.Join(o.OutDir, "initramfs-"+prof.Name+".cpio.gz"),
		Cmdline:   prof.KernelCmdline,
		Modules:   mods,
	}
	vm, err := os.ReadFile(k.Vmlinuz)
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(res.Kernel, vm, 0o644); err != nil {
		return nil, err
	}
	// The initramfs may carry secrets (a cluster key in rootfs/): only
	// its owner reads it.
	if err := writeAtomic(res.Initramfs, gz.Bytes(), 0o600); err != nil {
		return nil, err
	}
	return res, nil
}

func writeAtomic(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	os.Remove(tmp) // WriteFile keeps an existing file's mode
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil { // whatever the umask
		return err
	}
	return os.Rename(tmp, path)
}

// Files lists the initramfs entries: the directory skeleton, the
// console device node, /init, the profile's modules (checked to be in
// dependency order) and rootfs.
func Files(binary string, prof *platform.Profile, moduleRoot, rootfs string) ([]File, []string, error) {
	files := []File{{Path: "dev/console", Mode: ModeChar | 0o600, Major: 5, Minor: 1}}
	dirs := map[string]bool{}
	for _, d := range []string{"bin", "dev", "etc", "lib", "lib/modules", "proc", "sys", "run", "tmp", "data", "var"} {
		dirs[d] = true
	}
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, nil, fmt.Errorf("image: binary: %w", err)
	}
	files = append(files, File{Path: "init", Mode: ModeFile | 0o755, Data: bin})
	files = append(files, File{Path: "bin/sipedge", Mode: ModeLink | 0o777, Data: []byte("/init")})

	found, err := platform.FindModules(moduleRoot)
	if err != nil {
		return nil, nil, err
	}
	dep := func(n string) ([]string, error) {
		p, ok := found[platform.NormModule(n)]
		if !ok {
			return nil, fs.ErrNotExist
		}
		return platform.ModDepends(p)
	}
	builtin := func(n string) bool { _, ok := found[platform.NormModule(n)]; return !ok }
	if err := prof.CheckOrder(dep, builtin); err != nil {
		return nil, nil, err
	}
	var mods []string
	for _, m := range prof.Modules {
		p, ok := found[platform.NormModule(m.Name)]
		if !ok {
			if m.Optional {
				continue
			}
			return nil, nil, fmt.Errorf("image: module %s is not in the kernel package", m.Name)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, err
		}
		files = append(files, File{Path: "lib/modules/" + platform.NormModule(m.Name) + ".ko", Mode: ModeFile | 0o644, Data: b})
		mods = append(mods, m.Name)
	}
	if rootfs != "" {
		fs, err := rootfsFiles(rootfs, dirs)
		if err != nil {
			return nil, nil, err
		}
		files = append(files, fs...)
	}
	for d := range dirs {
		mode := uint32(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		files = append(files, File{Path: d, Mode: ModeDir | mode})
	}
	return files, mods, nil
}
