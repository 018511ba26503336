package image

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sipedge/sipedge/hal/testenv"
)

func TestWriteCPIOListsAndIsStable(t *testing.T) {
	cpioBin := testenv.MustHaveExec(t, "cpio")
	files := []File{
		{Path: "init", Mode: ModeFile | 0o755, Data: []byte("#!/bin/true\n")},
		{Path: "etc", Mode: ModeDir | 0o755},
		{Path: "dev/console", Mode: ModeChar | 0o600, Major: 5, Minor: 1},
		{Path: "dev", Mode: ModeDir | 0o755},
		{Path: "bin/sipedge", Mode: ModeLink | 0o777, Data: []byte("/init")},
		{Path: "bin", Mode: ModeDir | 0o755},
		{Path: "etc/motd", Mode: ModeFile | 0o644, Data: []byte("hello\n")},
	}
	var a, b bytes.Buffer
	if err := WriteCPIO(&a, files); err != nil {
		t.Fatal(err)
	}
	// Same files in another order: same bytes.
	rev := append([]File(nil), files...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	WriteCPIO(&b, rev)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("archive depends on input order")
	}
	cmd := exec.Command(cpioBin, "-t", "-v", "--quiet")
	cmd.Stdin = bytes.NewReader(a.Bytes())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -t: %v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	want := []string{"bin", "bin/sipedge -> /init", "dev", "dev/console", "etc", "etc/motd", "init"}
	if len(lines) != len(want) {
		t.Fatalf("cpio lists:\n%s", out)
	}
	for i, w := range want {
		if !strings.HasSuffix(lines[i], " "+w) || !strings.Contains(lines[i], "root") {
			t.Errorf("entry %d: %q, want name %q owned by root", i, lines[i], w)
		}
	}
	if !strings.HasPrefix(lines[3], "crw-------") || !strings.HasPrefix(lines[6], "-rwxr-xr-x") {
		t.Errorf("modes wrong:\n%s", out)
	}
	if err := WriteCPIO(&b, append(files, File{Path: "init", Mode: ModeFile})); err == nil {
		t.Error("duplicate path accepted")
	}
}

// repoRoot is the module root (two levels up).
func repoRoot(t *testing.T) string {
	_, f, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(f), "..", "..")
}

// needKernel skips unless the kernel can be fetched (cached or apt).
func needKernel(t *testing.T) string {
	cache := filepath.Join(repoRoot(t), "cache")
	if debs, _ := filepath.Glob(filepath.Join(cache, "deb", "linux-image-*.deb")); len(debs) == 0 {
		testenv.MustHaveExec(t, "apt-get", "apt-cache")
	}
	testenv.MustHaveExec(t, "dpkg-deb")
	return cache
}

func TestBuildIsReproducible(t *testing.T) {
	cache := needKernel(t)
	bin := testenv.SipedgeBinary(t)
	var images [2][]byte
	for i := range images {
		out := t.TempDir()
		res, err := Build(Options{Binary: bin, Profile: "qemu-x86_64", CacheDir: cache, RootFS: filepath.Join(repoRoot(t), "rootfs"), OutDir: out})
		if err != nil {
			t.Fatal(err)
		}
		if images[i], err = os.ReadFile(res.Initramfs); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(res.Kernel); err != nil || st.Size() < 1<<20 {
			t.Fatalf("kernel: %v %v", st, err)
		}
		if strings.Join(res.Modules, " ") != "watchdog i6300esb softdog tls bonding e1000 virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk crc16 crc32c_generic mbcache jbd2 ext4" {
			t.Fatalf("modules = %v", res.Modules)
		}
	}
	if !bytes.Equal(images[0], images[1]) {
		t.Fatal("two builds of the initramfs differ")
	}
	// And it holds what it must.
	{
		cpioBin := testenv.MustHaveExec(t, "cpio")
		cmd := exec.Command("sh", "-c", "gzip -dc | "+cpioBin+" -t --quiet")
		cmd.Stdin = bytes.NewReader(images[0])
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"init", "dev/console", "lib/modules/bonding.ko", "lib/modules/i6300esb.ko", "etc/sipedge/config.yaml", "etc/os-release"} {
			if !strings.Contains("\n"+string(out), "\n"+want+"\n") {
				t.Errorf("initramfs lacks %s", want)
			}
		}
	}
}

// TestRootfsSecretsStay0600: a cluster key in rootfs/ was copied into
// the image as 0644 (the builder looked only at the exec bit), readable
// by anyone on the box. Now a key (by name, or by its source mode) is
// 0600, other files keep 0644/0755.
func TestRootfsSecretsStay0600(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []struct {
		path string
		mode os.FileMode
	}{
		{"etc/motd", 0o644},
		{"data/cluster.key", 0o644}, // a checkout with umask 022
		{"etc/sipedge/web.pem", 0o664},
		{"etc/sipedge/token", 0o600},
		{"etc/hook.sh", 0o755},
		{"etc/private.sh", 0o700},
	} {
		p := filepath.Join(dir, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	dirs := map[string]bool{}
	files, err := rootfsFiles(dir, dirs)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint32{"etc/motd": 0o644, "data/cluster.key": 0o600, "etc/sipedge/web.pem": 0o600,
		"etc/sipedge/token": 0o600, "etc/hook.sh": 0o755, "etc/private.sh": 0o700}
	if len(files) != len(want) || !dirs["data"] || !dirs["etc/sipedge"] {
		t.Fatalf("files %d, dirs %v", len(files), dirs)
	}
	for _, f := range files {
		if got := f.Mode &^ ModeFile; got != want[f.Path] || f.Mode&0o170000 != ModeFile {
			t.Errorf("%s: mode %04o, want %04o", f.Path, got, want[f.Path])
		}
	}
}

// TestSecretFile: the cluster key given to the builder goes in at 0600;
// a key file others could already read is refused.
func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	good, leaked := filepath.Join(dir, "good.key"), filepath.Join(dir, "leaked.key")
	for p, mode := range map[string]os.FileMode{good: 0o600, leaked: 0o644} {
		if err := os.WriteFile(p, []byte("k"), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
	}
	f, err := secretFile(good, ClusterKeyPath)
	if err != nil || f.Mode != ModeFile|0o600 || f.Path != ClusterKeyPath || string(f.Data) != "k" {
		t.Errorf("secretFile = %+v, %v", f, err)
	}
	if _, err := secretFile(leaked, ClusterKeyPath); err == nil || !strings.Contains(err.Error(), "mode 0644") {
		t.Errorf("a 0644 key: %v, want a refusal", err)
	}
}
