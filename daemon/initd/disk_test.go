package initd

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// MountDisk with a fake mounter: the data partition mounted, the config
// seeded from the image into it and bound over the image's; a data
// partition that does not mount leaves a tmpfs, said (not persistent),
// and the config stays the image's.
func TestMountDisk(t *testing.T) {
	setup := func(t *testing.T) (root, dev string) {
		root = t.TempDir()
		dev = filepath.Join(root, "dev")
		os.MkdirAll(dev, 0o755)
		for _, p := range []string{"vda1", "vda4"} {
			os.WriteFile(filepath.Join(dev, p), nil, 0o600)
		}
		os.MkdirAll(filepath.Join(root, "etc", "sipedge"), 0o755)
		os.WriteFile(filepath.Join(root, "etc", "sipedge", "config.yaml"), []byte("node: {name: a}\n"), 0o644)
		os.WriteFile(filepath.Join(root, "etc", "sipedge", "cluster.key"), []byte("secret"), 0o600)
		return root, dev
	}
	t.Run("partition", func(t *testing.T) {
		root, dev := setup(t)
		var mounts []string
		dm := MountDisk(DiskLayout{Boot: filepath.Join(dev, "vda1"), Data: filepath.Join(dev, "vda4")},
			filepath.Join(root, "data"), filepath.Join(root, "boot"), filepath.Join(root, "etc", "sipedge"),
			func(src, target, fstype string, flags uintptr, data string) error {
				mounts = append(mounts, filepath.Base(src)+">"+strings.TrimPrefix(target, root)+":"+fstype)
				return nil
			})
		if !dm.Persistent || !dm.Seeded || dm.Err != nil {
			t.Fatalf("%+v", dm)
		}
		kept := filepath.Join(root, "data", root, "etc", "sipedge")
		want := "vda4>/data:ext4 vda1>/boot:ext4 sipedge>/etc/sipedge:"
		if strings.Join(mounts, " ") != want {
			t.Fatalf("mounts %v, want %s", mounts, want)
		}
		if b, _ := os.ReadFile(filepath.Join(kept, "config.yaml")); string(b) != "node: {name: a}\n" {
			t.Fatal("config not seeded")
		}
		if fi, err := os.Stat(filepath.Join(kept, "cluster.key")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("key %v %v", fi, err)
		}
		// The next boot keeps what is there.
		os.WriteFile(filepath.Join(kept, "config.yaml"), []byte("node: {name: changed}\n"), 0o644)
		dm = MountDisk(DiskLayout{Boot: filepath.Join(dev, "vda1"), Data: filepath.Join(dev, "vda4")},
			filepath.Join(root, "data"), filepath.Join(root, "boot"), filepath.Join(root, "etc", "sipedge"),
			func(string, string, string, uintptr, string) error { return nil })
		if dm.Seeded {
			t.Fatal("seeded twice")
		}
		if b, _ := os.ReadFile(filepath.Join(kept, "config.yaml")); string(b) != "node: {name: changed}\n" {
			t.Fatal("the kept config was overwritten")
		}
	})
	t.Run("no partition", func(t *testing.T) {
		root, dev := setup(t)
		var mounts []string
		dm := MountDisk(DiskLayout{Boot: filepath.Join(dev, "vda1"), Data: filepath.Join(dev, "vda4")},
			filepath.Join(root, "data"), filepath.Join(root, "boot"), filepath.Join(root, "etc", "sipedge"),
			func(src, target, fstype string, flags uintptr, data string) error {
				if fstype == "ext4" {
					return errors.New("wrong fs type")
				}
				mounts = append(mounts, fstype)
				return nil
			})
		if dm.Persistent || dm.Err == nil || !strings.Contains(dm.Err.Error(), "data partition") || strings.Join(mounts, " ") != "tmpfs" {
			t.Fatalf("%+v %v", dm, mounts)
		}
	})
}
