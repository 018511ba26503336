package image

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sipedge/sipedge/hal/testenv"
	"github.com/sipedge/sipedge/platform/grubenv"
)

// extract copies part of a disk image into its own file.
func extract(t *testing.T, disk []byte, off, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "part.img")
	if err := os.WriteFile(p, disk[off:off+size], 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDiskImage builds out/disk.img twice: the same bytes; the MBR
// layout sfdisk reads back; GRUB's boot code and core image in place;
// each file system clean (e2fsck); the boot partition's grubenv on slot
// A; the data partition ext4 with its journal and the seeded config;
// slot A the kernel and initramfs.
func TestDiskImage(t *testing.T) {
	testenv.MustHaveExec(t, "sfdisk", "mke2fs", "debugfs", "e2fsck", "grub-mkimage")
	cache := needKernel(t)
	bin := testenv.SipedgeBinary(t)
	rootfs := filepath.Join(repoRoot(t), "rootfs")
	// One initramfs (TestBuildIsReproducible checks its bytes), two disks.
	res, err := Build(Options{Binary: bin, Profile: "qemu-x86_64", CacheDir: cache, RootFS: rootfs, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var disks [2][]byte
	var slot []byte
	for i := range disks {
		out := t.TempDir()
		dr, err := BuildDisk(Options{RootFS: rootfs, OutDir: out}, res, DiskOptions{SourceDate: time.Unix(1700000000, 0)})
		if err != nil {
			t.Fatal(err)
		}
		if disks[i], err = os.ReadFile(dr.Disk); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if out, err := exec.Command("sfdisk", "-d", dr.Disk).Output(); err != nil || !strings.Contains(string(out),
				"disk.img1 : start=        2048, size=        8192, type=83, bootable\n"+dr.Disk+"2 : start=       10240, size=      131072, type=83\n"+
					dr.Disk+"3 : start=      141312, size=      131072, type=83\n"+dr.Disk+"4 : start=      272384, size=      262144, type=83") {
				t.Fatalf("sfdisk -d: %s %v", out, err)
			}
			if slot, err = os.ReadFile(dr.Slot); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !bytes.Equal(disks[0], disks[1]) {
		t.Fatal("two builds of the disk differ")
	}
	d := disks[0]
	boot, _ := os.ReadFile("/usr/lib/grub/i386-pc/boot.img")
	if !bytes.Equal(d[:0x1b8], boot[:0x1b8]) || d[510] != 0x55 || d[511] != 0xaa {
		t.Fatal("MBR: no GRUB boot code or no signature")
	}
	if !bytes.Equal(d[slotAStart:slotAStart+int64(len(slot))], slot) {
		t.Fatal("slot A is not slot.img")
	}
	if bytes.ContainsFunc(d[slotBStart:slotBStart+SlotSize], func(r rune) bool { return r != 0 }) {
		t.Fatal("slot B is not empty")
	}
	for _, p := range []struct {
		name      string
		off, size int64
	}{{"boot", bootStart, bootSize}, {"slot", slotAStart, int64(len(slot))}, {"data", dataStart, DataSize}} {
		img := extract(t, d, p.off, p.size)
		if out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput(); err != nil {
			t.Errorf("%s: e2fsck: %v\n%s", p.name, err, out)
		}
		cat := func(path string) string {
			out, err := exec.Command("debugfs", "-R", "cat "+path, img).Output()
			if err != nil {
				t.Fatalf("%s: debugfs cat %s: %v", p.name, path, err)
			}
			return string(out)
		}
		switch p.name {
		case "boot":
			env, err := grubenv.Parse([]byte(cat("/grub/grubenv")))
			if err != nil || env["slot"] != "A" || env["try"] != "" {
				t.Errorf("grubenv %v %v", env, err)
			}
			if cfg := cat("/grub/grub.cfg"); !strings.Contains(cfg, "save_env try") || !strings.Contains(cfg, "sipedge.slot=$boot sipedge.trial=$trial") {
				t.Errorf("grub.cfg:\n%s", cfg)
			}
		case "slot":
			if k := cat("/" + SlotKernel); len(k) < 1<<20 {
				t.Errorf("slot: vmlinuz of %d bytes", len(k))
			}
		case "data":
			want, _ := os.ReadFile(filepath.Join(rootfs, "etc", "sipedge", "config.yaml"))
			if cat("/etc/sipedge/config.yaml") != string(want) {
				t.Error("data: etc/sipedge/config.yaml is not rootfs's")
			}
			out, _ := exec.Command("dumpe2fs", "-h", img).Output()
			if !strings.Contains(string(out), "has_journal") {
				t.Errorf("data: no journal:\n%s", out)
			}
		}
	}
}
