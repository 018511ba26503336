package image

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sipedge/sipedge/platform/grubenv"
)

// The disk layout (MBR, 512-byte sectors). GRUB's core image sits in
// the gap before the first partition; the boot partition holds
// grub/grub.cfg and grub/grubenv; the slots hold vmlinuz and
// initramfs.cpio.gz each (an ext2 image written whole by an update); the
// data partition (ext4) holds the store, keys and config and is never
// written by an update.
const (
	sector      = 512
	mib         = 1 << 20
	bootStart   = 1 * mib
	bootSize    = 4 * mib
	SlotSize    = 64 * mib // each of A and B
	DataSize    = 128 * mib
	slotAStart  = bootStart + bootSize
	slotBStart  = slotAStart + SlotSize
	dataStart   = slotBStart + SlotSize
	diskSize    = dataStart + DataSize
	maxCoreSize = bootStart - sector // the gap after the MBR
)

// Partition numbers, as the kernel names them (vda1..vda4).
const (
	PartBoot  = 1
	PartSlotA = 2
	PartSlotB = 3
	PartData  = 4
)

// Fixed identities, so that the same inputs give the same bytes.
const (
	diskID   = "0x5195ed9e"
	bootUUID = "51be0000-0000-4000-8000-000000000001"
	slotUUID = "51be0000-0000-4000-8000-000000000002"
	dataUUID = "51be0000-0000-4000-8000-000000000004"
)

// SlotFiles are the files of a slot image.
const (
	SlotKernel    = "vmlinuz"
	SlotInitramfs = "initramfs.cpio.gz"
)

// grubModules go into the core image: everything grub.cfg uses, so the
// boot partition needs no module directory.
var grubModules = []string{"biosdisk", "part_msdos", "ext2", "normal", "configfile", "linux", "loadenv", "test", "echo", "sleep"}

// GRUBConfig is the boot partition's grub/grub.cfg. The environment
// block says which slot is committed (slot) and which one to try once
// (try): GRUB clears try and saves the block before it boots the trial
// slot, so any reset before the new firmware commits (a crash, the
// watchdog, a power cut) brings the committed slot back by itself. The
// kernel learns its slot and whether this is the trial from
// sipedge.slot= and sipedge.trial=.
func GRUBConfig(cmdline string) string {
	return `# sipedge boot: A/B slots, one-shot trial boots (platform/image/disk.go)
set timeout=0
load_env slot try
if [ "$slot" != "B" ]; then set slot=A; fi
set boot=$slot
set trial=0
if [ -n "$try" ]; then
  set boot=$try
  set trial=1
  set try=
  save_env try
fi
if [ "$boot" = "B" ]; then set other=A; set root=(hd0,msdos3); else set other=B; set root=(hd0,msdos2); fi
if linux /` + SlotKernel + ` ` + cmdline + ` sipedge.slot=$boot sipedge.trial=$trial; then
  initrd /` + SlotInitramfs + `
  boot
fi
echo "slot $boot does not load: booting slot $other"
if [ "$other" = "B" ]; then set root=(hd0,msdos3); else set root=(hd0,msdos2); fi
linux /` + SlotKernel + ` ` + cmdline + ` sipedge.slot=$other sipedge.trial=0
initrd /` + SlotInitramfs + `
boot
`
}

// DiskOptions add to Options for BuildDisk.
type DiskOptions struct {
	// ExtraCmdline is appended to the profile's kernel command line in
	// grub.cfg (the lab's sipedge.debug=1).
	ExtraCmdline string
	// SourceDate stamps every file system (SOURCE_DATE_EPOCH).
	SourceDate time.Time
}

// DiskResult names what BuildDisk wrote.
type DiskResult struct {
	Disk string // out/disk.img
	Slot string // out/slot.img: the slot image an update bundle carries
}

// BuildDisk writes OutDir/slot.img (ext2: the kernel and initramfs of
// res) and OutDir/disk.img: an MBR with GRUB's boot code, GRUB's core
// image in the gap, the boot partition, slot A (slot.img), an empty slot
// B and the data partition seeded with the image's etc/sipedge (the
// config and keys, which live there from the first boot on). Nothing is
// mounted: sfdisk, mke2fs -d, grub-mkimage and writes at offsets. The
// same inputs give the same bytes.
func BuildDisk(o Options, res *Result, do DiskOptions) (*DiskResult, error) {
	for _, tool := range []string{"sfdisk", "mke2fs", "debugfs", "grub-mkimage"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("image: disk: %s not found (apt-get install fdisk e2fsprogs grub-pc-bin)", tool)
		}
	}
	grubDir := "/usr/lib/grub/i386-pc"
	if _, err := os.Stat(filepath.Join(grubDir, "boot.img")); err != nil {
		return nil, fmt.Errorf("image: disk: GRUB's BIOS files: %w (apt-get install grub-pc-bin)", err)
	}
	tmp, err := os.MkdirTemp("", "sipedge-disk-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	epoch := do.SourceDate
	if epoch.IsZero() {
		epoch = time.Unix(0, 0)
	}

	// Slot A.
	slotDir := filepath.Join(tmp, "slot")
	if err := copyInto(slotDir, map[string]string{SlotKernel: res.Kernel, SlotInitramfs: res.Initramfs}, epoch); err != nil {
		return nil, err
	}
	var content int64
	for _, f := range []string{res.Kernel, res.Initramfs} {
		fi, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		content += fi.Size()
	}
	slotSize := (content*11/10 + 2*mib + mib - 1) / mib * mib
	if slotSize > SlotSize {
		return nil, fmt.Errorf("image: disk: kernel and initramfs need a %d MiB slot, slots have %d", slotSize/mib, SlotSize/mib)
	}
	slotImg := filepath.Join(tmp, "slot.img")
	if err := mke2fs(slotImg, slotDir, "ext2", "slot", slotUUID, slotSize, epoch); err != nil {
		return nil, err
	}

	// The boot partition: grub.cfg and the environment block.
	bootDir := filepath.Join(tmp, "boot")
	if err := os.MkdirAll(filepath.Join(bootDir, "grub"), 0o755); err != nil {
		return nil, err
	}
	cmdline := strings.TrimSpace(res.Cmdline + " " + do.ExtraCmdline)
	env, _ := grubenv.Env{"slot": "A", "try": ""}.Encode()
	for name, b := range map[string][]byte{"grub/grub.cfg": []byte(GRUBConfig(cmdline)), "grub/grubenv": env} {
		if err := os.WriteFile(filepath.Join(bootDir, name), b, 0o644); err != nil {
			return nil, err
		}
	}
	bootImg := filepath.Join(tmp, "boot.img")
	if err := mke2fs(bootImg, bootDir, "ext2", "boot", bootUUID, bootSize, epoch); err != nil {
		return nil, err
	}

	// The data partition, seeded with etc/sipedge from the image.
	dataDir := filepath.Join(tmp, "data")
	if err := seedData(dataDir, o); err != nil {
		return nil, err
	}
	dataImg := filepath.Join(tmp, "data.img")
	if err := mke2fs(dataImg, dataDir, "ext4", "data", dataUUID, DataSize, epoch); err != nil {
		return nil, err
	}

	// GRUB's core image, for the gap after the MBR.
	core := filepath.Join(tmp, "core.img")
	args := append([]string{"-O", "i386-pc", "-d", grubDir, "-o", core, "-p", "(hd0,msdos1)/grub"}, grubModules...)
	if out, err := exec.Command("grub-mkimage", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("image: disk: grub-mkimage: %w: %s", err, bytes.TrimSpace(out))
	}

	disk := filepath.Join(tmp, "disk.img")
	if err := assembleDisk(disk, filepath.Join(grubDir, "boot.img"), core, bootImg, slotImg, dataImg); err != nil {
		return nil, err
	}
	dr := &DiskResult{Disk: filepath.Join(o.OutDir, "disk.img"), Slot: filepath.Join(o.OutDir, "slot.img")}
	// The disk holds the data partition's keys: its owner's alone.
	if err := moveFile(disk, dr.Disk, 0o600); err != nil {
		return nil, err
	}
	if err := moveFile(slotImg, dr.Slot, 0o600); err != nil {
		return nil, err
	}
	return dr, nil
}

// copyInto copies files (name -> source) into dir with mtime epoch.
func copyInto(dir string, files map[string]string, epoch time.Time) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, src := range files {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, name)
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return err
		}
		if err := os.Chtimes(dst, epoch, epoch); err != nil {
			return err
		}
	}
	return os.Chtimes(dir, epoch, epoch)
}

// seedData lays out the data partition's first contents: etc/sipedge
// from rootfs (and the cluster key), with the modes the initramfs gives
// them.
func seedData(dir string, o Options) error {
	dirs := map[string]bool{}
	var files []File
	if o.RootFS != "" {
		fs, err := rootfsFiles(o.RootFS, dirs)
		if err != nil {
			return err
		}
		files = fs
	}
	if o.ClusterKey != "" {
		f, err := secretFile(o.ClusterKey, ClusterKeyPath)
		if err != nil {
			return err
		}
		files = append(files, f)
	}
	if err := os.MkdirAll(filepath.Join(dir, "etc", "sipedge"), 0o755); err != nil {
		return err
	}
	for _, f := range files {
		if !strings.HasPrefix(f.Path, "etc/sipedge/") {
			continue
		}
		p := filepath.Join(dir, f.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.Data, os.FileMode(f.Mode&0o777)); err != nil {
			return err
		}
		if err := os.Chmod(p, os.FileMode(f.Mode&0o777)); err != nil {
			return err
		}
	}
	return os.Chmod(dir, 0o700)
}

// mke2fs makes a file system image of size bytes holding the tree dir,
// with fixed UUIDs, hash seed and times.
func mke2fs(img, dir, fstype, label, uuid string, size int64, epoch time.Time) error {
	// The features are named, not taken from the build host's
	// mke2fs.conf (MKE2FS_CONFIG=/dev/null): the same bytes anywhere,
	// and the data partition's journal whatever the host's defaults
	// (without one a power cut corrupts it: the QEMU update test's
	// kill during a write found that).
	features := "^has_journal"
	if fstype == "ext4" {
		features = "has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize"
	}
	cmd := exec.Command("mke2fs", "-q", "-F", "-t", fstype, "-O", features, "-I", "256", "-b", "4096", "-m", "0", "-L", label, "-U", uuid,
		"-E", "hash_seed="+uuid+",root_owner=0:0,lazy_itable_init=0", "-d", dir, img, strconv.FormatInt(size/1024, 10)+"k")
	// mke2fs -d copies each file's times: all of them are the epoch.
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, epoch, epoch)
	})
	if err != nil {
		return fmt.Errorf("image: disk: %w", err)
	}
	ts := strconv.FormatInt(epoch.Unix(), 10)
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME="+ts, "SOURCE_DATE_EPOCH="+ts, "MKE2FS_CONFIG=/dev/null")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("image: disk: mke2fs %s: %w: %s", label, err, bytes.TrimSpace(out))
	}
	// The inode times are the source files' (utimes cannot set ctime,
	// and reading a file may move its atime): debugfs sets them all to
	// the epoch.
	var script strings.Builder
	filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if rel, _ := filepath.Rel(dir, p); err == nil && rel != "." {
			for _, f := range []string{"ctime", "atime", "mtime"} {
				fmt.Fprintf(&script, "sif /%[1]s %[2]s @%[3]s\nsif /%[1]s %[2]s_extra 0\n", filepath.ToSlash(rel), f, ts)
			}
		}
		return nil
	})
	dbg := exec.Command("debugfs", "-w", "-f", "-", img)
	dbg.Stdin = strings.NewReader(script.String())
	dbg.Env = cmd.Env
	out, err := dbg.CombinedOutput()
	if err != nil || bytes.Contains(out, []byte("sif: ")) {
		return fmt.Errorf("image: disk: debugfs %s: %v: %s", label, err, bytes.TrimSpace(out))
	}
	return nil
}

// assembleDisk writes the partition table with sfdisk, GRUB's boot code
// into the MBR (before the table), the core image after it, and the
// partition images at their offsets.
func assembleDisk(disk, bootCode, core, boot, slot, data string) error {
	f, err := os.Create(disk)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(diskSize); err != nil {
		return err
	}
	table := fmt.Sprintf("label: dos\nlabel-id: %s\nunit: sectors\n"+
		"start=%d, size=%d, type=83, bootable\nstart=%d, size=%d, type=83\nstart=%d, size=%d, type=83\nstart=%d, size=%d, type=83\n",
		diskID, bootStart/sector, bootSize/sector, slotAStart/sector, SlotSize/sector, slotBStart/sector, SlotSize/sector, dataStart/sector, DataSize/sector)
	cmd := exec.Command("sfdisk", "--no-reread", "--no-tell-kernel", "-q", disk)
	cmd.Stdin = strings.NewReader(table)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("image: disk: sfdisk: %w: %s", err, bytes.TrimSpace(out))
	}
	bc, err := os.ReadFile(bootCode)
	if err != nil {
		return err
	}
	cb, err := os.ReadFile(core)
	if err != nil {
		return err
	}
	if len(cb) > maxCoreSize {
		return fmt.Errorf("image: disk: GRUB core image of %d bytes does not fit in the %d before the first partition", len(cb), maxCoreSize)
	}
	// boot.img's code and data stop at 0x1b8 (the disk signature and
	// the table that sfdisk wrote follow).
	if _, err := f.WriteAt(bc[:0x1b8], 0); err != nil {
		return err
	}
	if _, err := f.WriteAt(cb, sector); err != nil {
		return err
	}
	for _, p := range []struct {
		img string
		off int64
	}{{boot, bootStart}, {slot, slotAStart}, {data, dataStart}} {
		b, err := os.ReadFile(p.img)
		if err != nil {
			return err
		}
		if err := writeSparse(f, b, p.off); err != nil {
			return err
		}
	}
	return f.Close()
}

// writeSparse writes b at off, skipping 64 KiB blocks of zeros (the file
// was truncated to size: they read as zeros).
func writeSparse(f *os.File, b []byte, off int64) error {
	const blk = 64 << 10
	zero := make([]byte, blk)
	for i := 0; i < len(b); i += blk {
		c := b[i:min(i+blk, len(b))]
		if bytes.Equal(c, zero[:len(c)]) {
			continue
		}
		if _, err := f.WriteAt(c, off+int64(i)); err != nil {
			return err
		}
	}
	return nil
}

func moveFile(src, dst string, mode os.FileMode) error {
	if err := os.Chmod(src, mode); err != nil {
		return err
	}
	if err := os.Rename(src, dst); err == nil {
		return nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return writeAtomic(dst, b, mode)
}
