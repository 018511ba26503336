// Command mkimage builds the appliance image (see platform/image):
//
//	go run ./scripts/mkimage -binary bin/sipedge -profile qemu-x86_64
//
// writes out/vmlinuz and out/initramfs-<profile>.cpio.gz, with the kernel
// package cached in cache/. With -print-cmdline it only prints the
// profile's kernel command line (scripts/qemu.sh boots with it).
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

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
	fmt.Printf("kernel    %s\ninitramfs %s\ncmdline   %s\nmodules   %s\n", res.Kernel, res.Initramfs, res.Cmdline, strings.Join(res.Modules, " "))
}
