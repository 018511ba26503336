package image

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

var dependsRE = regexp.MustCompile(`Depends: (linux-image-[0-9][^\s]*-amd64)`)

// KernelPackage asks apt which linux-image-*-amd64 package the
// linux-image-amd64 metapackage depends on (running apt-get update once
// if the cache is empty).
func KernelPackage() (string, error) {
	out, err := exec.Command("apt-cache", "depends", "linux-image-amd64").CombinedOutput()
	if err != nil || !dependsRE.Match(out) {
		if uerr := exec.Command("apt-get", "update").Run(); uerr != nil {
			return "", fmt.Errorf("apt-get update: %w", uerr)
		}
		out, err = exec.Command("apt-cache", "depends", "linux-image-amd64").CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("apt-cache depends linux-image-amd64: %w: %s", err, out)
		}
	}
	m := dependsRE.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("apt-cache depends linux-image-amd64: no linux-image package in %q", out)
	}
	return string(m[1]), nil
}

// Kernel is an extracted Debian kernel package.
type Kernel struct {
	Version    string // e.g. 6.1.0-56-amd64
	Vmlinuz    string // path
	ModuleRoot string // lib/modules/<version>
}

// FetchKernel downloads the kernel package into cacheDir/deb with
// apt-get download (once) and extracts it with dpkg-deb -x into
// cacheDir/kernel (once).
func FetchKernel(cacheDir string) (*Kernel, error) {
	debDir := filepath.Join(cacheDir, "deb")
	debs, _ := filepath.Glob(filepath.Join(debDir, "linux-image-*-amd64_*.deb"))
	if len(debs) == 0 {
		pkg, err := KernelPackage()
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(debDir, 0o755); err != nil {
			return nil, err
		}
		cmd := exec.Command("apt-get", "download", pkg)
		cmd.Dir = debDir
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("apt-get download %s: %w: %s", pkg, err, out)
		}
		debs, _ = filepath.Glob(filepath.Join(debDir, "linux-image-*-amd64_*.deb"))
		if len(debs) == 0 {
			return nil, fmt.Errorf("apt-get download %s left no .deb in %s", pkg, debDir)
		}
	}
	deb := debs[len(debs)-1]
	dest := filepath.Join(cacheDir, "kernel")
	vmlinuz, _ := filepath.Glob(filepath.Join(dest, "boot", "vmlinuz-*"))
	if len(vmlinuz) == 0 {
		tmp := dest + ".tmp"
		os.RemoveAll(tmp)
		if out, err := exec.Command("dpkg-deb", "-x", deb, tmp).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("dpkg-deb -x %s: %w: %s", deb, err, bytes.TrimSpace(out))
		}
		os.RemoveAll(dest)
		if err := os.Rename(tmp, dest); err != nil {
			return nil, err
		}
		vmlinuz, _ = filepath.Glob(filepath.Join(dest, "boot", "vmlinuz-*"))
		if len(vmlinuz) == 0 {
			return nil, fmt.Errorf("%s has no boot/vmlinuz-*", deb)
		}
	}
	ver := strings.TrimPrefix(filepath.Base(vmlinuz[0]), "vmlinuz-")
	return &Kernel{Version: ver, Vmlinuz: vmlinuz[0], ModuleRoot: filepath.Join(dest, "lib", "modules", ver)}, nil
}
