package update

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sipedge/sipedge/platform/bundle"
	"github.com/sipedge/sipedge/platform/grubenv"
)

// TestRollbackRestoresConfig: the configuration as it was when the
// update was armed comes back when the update rolls back (the trial's
// edit, with a setting the old firmware would refuse, is kept beside it
// and named in the event); a committed update, or a rollback with the
// file unchanged, leaves the file alone.
func TestRollbackRestoresConfig(t *testing.T) {
	const before = "node: {name: edge-a}\n"
	const trial = "node: {name: edge-a}\nsetting_of_a_later_release: 1\n"
	bundleB := mkBundle(t, "v1.0.0+6", "qemu-x86_64", []byte("slot image"), bundle.TestPrivateKey(), nil)
	arm := func(t *testing.T) (*box, string) {
		b := newBox(t, "A")
		cfg := filepath.Join(b.dir, "etc", "config.yaml")
		os.MkdirAll(filepath.Dir(cfg), 0o700)
		if err := os.WriteFile(cfg, []byte(before), 0o600); err != nil {
			t.Fatal(err)
		}
		in := b.installer("A", "v1.0.0+5")
		in.ConfigPath = cfg
		if _, err := in.Apply(context.Background(), bytes.NewReader(bundleB), false, nil); err != nil {
			t.Fatal(err)
		}
		// GRUB boots B once (try cleared); the trial begins and edits the file.
		EditEnv(b.env, func(e grubenv.Env) { e["try"] = "" })
		if _, err := BeginTrial(b.data, Boot{Slot: "B", Trial: true}); err != nil {
			t.Fatal(err)
		}
		return b, cfg
	}

	t.Run("rolled back", func(t *testing.T) {
		b, cfg := arm(t)
		os.WriteFile(cfg, []byte(trial), 0o600)
		// The trial died; GRUB boots A, whose PID 1 looks before the daemon reads the file.
		restored, err := RestoreConfig(b.data, b.env, cfg, Boot{Slot: "A"})
		if err != nil || !restored {
			t.Fatalf("restored %v, %v", restored, err)
		}
		if got, _ := os.ReadFile(cfg); string(got) != before {
			t.Errorf("config after the rollback:\n%s", got)
		}
		if got, _ := os.ReadFile(ConfigTrial(b.data)); string(got) != trial {
			t.Errorf("the trial's config is not kept:\n%s", got)
		}
		msg, err := CheckRollback(b.data, b.env, Boot{Slot: "A"}, false)
		if err != nil || !strings.Contains(msg, "rolled back") || !strings.Contains(msg, "configuration of before the update is back") {
			t.Errorf("event %q (%v)", msg, err)
		}
		// Done once: a later boot finds the update rolled back and restores nothing.
		if again, err := RestoreConfig(b.data, b.env, cfg, Boot{Slot: "A"}); again || err != nil {
			t.Errorf("restored again: %v %v", again, err)
		}
	})

	t.Run("on the trial itself nothing", func(t *testing.T) {
		b, cfg := arm(t)
		os.WriteFile(cfg, []byte(trial), 0o600)
		if restored, err := RestoreConfig(b.data, b.env, cfg, Boot{Slot: "B", Trial: true}); restored || err != nil {
			t.Fatalf("restored on the trial boot: %v %v", restored, err)
		}
		if got, _ := os.ReadFile(cfg); string(got) != trial {
			t.Errorf("config changed on the trial boot:\n%s", got)
		}
	})

	t.Run("unchanged file left alone", func(t *testing.T) {
		b, cfg := arm(t)
		if restored, err := RestoreConfig(b.data, b.env, cfg, Boot{Slot: "A"}); restored || err != nil {
			t.Fatalf("%v %v", restored, err)
		}
		if _, err := os.Stat(ConfigTrial(b.data)); err == nil {
			t.Error("a trial copy written for an unchanged file")
		}
	})
}
