// Command mkimage builds the appliance image (see platform/image):
//
//	go run ./scripts/mkimage -binary bin/sipedge -profile qemu-x86_64
//
// writes out/vmlinuz and out/initramfs-<profile>.cpio.gz, with the kernel
// package cached in cache/, and, with -disk, out/disk.img (GRUB, slots A
// and B, /data) and out/slot.img (what an update bundle carries). File
// systems are stamped with SOURCE_DATE_EPOCH (default: 0). With -print-cmdline it only prints the
// profile's kernel command line (scripts/qemu.sh boots with it).
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sipedge/sipedge/platform"
	"github.com/sipedge/sipedge/platform/image"
)

func main() {
	var o image.Options
	flag.StringVar(&o.Binary, "binary", "bin/sipedge", "static sipedge binary (/init)")
	flag.StringVar(&o.Profile, "profile", "qemu-x86_64", "board profile")
	flag.StringVar(&o.CacheDir, "cache", "cache", "download and extraction cache")
	flag.StringVar(&o.RootFS, "rootfs", "rootfs", "tree to add to the image")
	flag.StringVar(&o.OutDir, "out", "out", "output directory")
	flag.StringVar(&o.ClusterKey, "cluster-key", "", "cluster key file (sipedge ctl cluster keygen, mode 0600) to put in the image as /"+image.ClusterKeyPath+", mode 0600")
	disk := flag.Bool("disk", false, "also write out/disk.img and out/slot.img (needs sfdisk, mke2fs, grub-pc-bin)")
	extra := flag.String("extra-cmdline", "", "words added to the kernel command line in the disk's grub.cfg (e.g. sipedge.debug=1)")
	printCmdline := flag.Bool("print-cmdline", false, "print the profile's kernel command line and exit")
	flag.Parse()
	if *printCmdline {
		p, err := platform.Lookup(o.Profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mkimage:", err)
			os.Exit(1)
		}
		fmt.Println(p.KernelCmdline)
		return
	}
	res, err := image.Build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
	if *disk {
		var do image.DiskOptions
		do.ExtraCmdline = *extra
		if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" {
			sec, err := strconv.ParseInt(e, 10, 64)
			if err != nil {
				fmt.Fprintln(os.Stderr, "mkimage: SOURCE_DATE_EPOCH:", err)
				os.Exit(1)
			}
			do.SourceDate = time.Unix(sec, 0)
		}
		dr, err := image.BuildDisk(o, res, do)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mkimage:", err)
			os.Exit(1)
		}
		fmt.Printf("disk      %s\nslot      %s\n", dr.Disk, dr.Slot)
	}
	fmt.Printf("kernel    %s\ninitramfs %s\ncmdline   %s\nmodules   %s\n", res.Kernel, res.Initramfs, res.Cmdline, strings.Join(res.Modules, " "))
}
