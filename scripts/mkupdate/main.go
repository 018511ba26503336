// Command mkupdate writes a signed update bundle (platform/bundle) from
// the slot image that scripts/mkimage -disk wrote:
//
//	go run ./scripts/mkupdate -slot out/slot.img -board qemu-x86_64 \
//	    -version "$(git describe --tags --always)" -build "$(git rev-list --count HEAD)" \
//	    -key /path/to/signing.key -out out/sipedge-update.bundle
//
// The build time is SOURCE_DATE_EPOCH (the source date, as for the image).
// -key test signs with the public test key (only builds made with the
// sipedge_testkey tag trust it); -keygen PRIV PUB makes a new signing key.
package main

import (
	"bytes"
	"crypto/ed25519"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/sipedge/sipedge/platform/bundle"
	"github.com/sipedge/sipedge/platform/image"
)

func main() {
	slot := flag.String("slot", "out/slot.img", "slot image (scripts/mkimage -disk)")
	board := flag.String("board", "qemu-x86_64", "board profile the bundle is for")
	describe := flag.String("version", "", "git describe of the build (v1.2.3..., or a bare hash: v0.0.0)")
	build := flag.Int("build", 0, "build number (git rev-list --count HEAD)")
	minVersion := flag.String("min-version", "v0.0.0+0", "the oldest running version it may replace")
	keyFile := flag.String("key", "", "signing key file (base64 Ed25519 seed, mode 0600), or \"test\" for the test key")
	out := flag.String("out", "out/sipedge-update.bundle", "bundle to write")
	exitAtStart := flag.Bool("test-exit-at-start", false, "test flag: the daemon exits at start on the trial boot (test key only)")
	hangAtStart := flag.Bool("test-hang-at-start", false, "test flag: the daemon hangs at start on the trial boot (test key only)")
	keygen := flag.Bool("keygen", false, "write a new signing key: mkupdate -keygen PRIVATE PUBLIC")
	flag.Parse()
	if *keygen {
		if flag.NArg() != 2 {
			fail(fmt.Errorf("-keygen needs PRIVATE and PUBLIC file names"))
		}
		fail(bundle.WriteKeyPair(flag.Arg(0), flag.Arg(1)))
		return
	}
	var key ed25519.PrivateKey
	switch *keyFile {
	case "":
		fail(fmt.Errorf("no signing key: -key FILE (or -key test)"))
	case "test":
		key = bundle.TestPrivateKey()
	default:
		var err error
		key, err = bundle.ReadPrivateKey(*keyFile)
		fail(err)
	}
	built := time.Unix(0, 0).UTC()
	if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" {
		sec, err := strconv.ParseInt(e, 10, 64)
		fail(err)
		built = time.Unix(sec, 0).UTC()
	}
	data, err := os.ReadFile(*slot)
	fail(err)
	m := bundle.Manifest{Board: *board, Version: bundle.FromDescribe(*describe, *build).String(), Built: built, MinVersion: *minVersion}
	if *exitAtStart || *hangAtStart {
		if *keyFile != "test" {
			fail(fmt.Errorf("test flags need -key test"))
		}
		m.Test = &bundle.TestFlags{ExitAtStart: *exitAtStart, HangAtStart: *hangAtStart}
	}
	var b bytes.Buffer
	fail(bundle.Write(&b, m, []bundle.Input{{Name: "slot.img", Data: data}}, key))
	if int64(len(data)) > image.SlotSize {
		fail(fmt.Errorf("slot image of %d bytes, slots have %d", len(data), image.SlotSize))
	}
	fail(os.WriteFile(*out, b.Bytes(), 0o644))
	fmt.Printf("bundle    %s\nversion   %s\nboard     %s\nbytes     %d\n", *out, m.Version, m.Board, b.Len())
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkupdate:", err)
		os.Exit(1)
	}
}
