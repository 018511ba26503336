package update

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sipedge/sipedge/platform/bundle"
	"github.com/sipedge/sipedge/platform/grubenv"
)

var testKeys = []bundle.Key{{Name: "test", Pub: bundle.TestPublicKey(), Test: true}}

// box is a fake A/B disk: the partitions are files named like the
// devices (disk2, disk3), the environment block a file.
type box struct {
	dir, disk, env, data string
}

func newBox(t *testing.T, slot string) *box {
	t.Helper()
	d := t.TempDir()
	b := &box{dir: d, disk: filepath.Join(d, "disk"), env: filepath.Join(d, "grubenv"), data: filepath.Join(d, "data")}
	for _, n := range []int{PartSlotA, PartSlotB} {
		if err := os.WriteFile(PartPath(b.disk, n), bytes.Repeat([]byte{0xee}, 4096), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env, _ := grubenv.Env{"slot": slot, "try": ""}.Encode()
	if err := os.WriteFile(b.env, env, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *box) installer(slot string, running string) *Installer {
	v, _ := bundle.ParseVersion(running)
	return (&Installer{Board: "qemu-x86_64", Running: v, Keys: testKeys, Boot: Boot{Slot: slot}, Disk: b.disk,
		EnvPath: b.env, DataDir: b.data, SlotSize: 1 << 20}).Init()
}

func (b *box) envVars(t *testing.T) grubenv.Env {
	t.Helper()
	e, err := ReadEnv(b.env)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mkBundle(t *testing.T, version, board string, slot []byte, key ed25519.PrivateKey, flags *bundle.TestFlags) []byte {
	t.Helper()
	var w bytes.Buffer
	m := bundle.Manifest{Board: board, Version: version, MinVersion: "v0.0.0+0", Test: flags}
	if err := bundle.Write(&w, m, []bundle.Input{{Name: SlotPartName, Data: slot}}, key); err != nil {
		t.Fatal(err)
	}
	return w.Bytes()
}

func TestApplyWritesInactiveSlotAndArmsTrial(t *testing.T) {
	b := newBox(t, "A")
	slot := []byte("an ext2 image with vmlinuz and the initramfs")
	var stages []string
	res, err := b.installer("A", "v1.0.0+5").Apply(context.Background(), bytes.NewReader(mkBundle(t, "v1.0.0+6", "qemu-x86_64", slot, bundle.TestPrivateKey(), nil)), false,
		func(p Progress) {
			if len(stages) == 0 || stages[len(stages)-1] != p.Stage {
				stages = append(stages, p.Stage)
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	if res.Slot != "B" || res.Version != "v1.0.0+6" || res.Bytes != int64(len(slot)) {
		t.Fatalf("%+v", res)
	}
	got, _ := os.ReadFile(PartPath(b.disk, PartSlotB))
	if !bytes.HasPrefix(got, slot) {
		t.Fatal("slot B not written")
	}
	if a, _ := os.ReadFile(PartPath(b.disk, PartSlotA)); a[0] != 0xee {
		t.Fatal("slot A touched")
	}
	if e := b.envVars(t); e["try"] != "B" || e["slot"] != "A" {
		t.Fatalf("env %v", e)
	}
	s, _ := ReadState(b.data)
	if s.Phase != PhasePending || s.To != "v1.0.0+6" || s.From != "v1.0.0+5" || s.Slot != "B" {
		t.Fatalf("state %+v", s)
	}
	if strings.Join(stages, ",") != "verify,write,readback,done" {
		t.Fatalf("stages %v", stages)
	}
}

func TestApplyRefusesAndArmsNothing(t *testing.T) {
	slot := []byte("slot image")
	_, other, _ := ed25519.GenerateKey(nil)
	good := mkBundle(t, "v1.0.0+6", "qemu-x86_64", slot, bundle.TestPrivateKey(), nil)
	tampered := bytes.Clone(good)
	tampered[len(tampered)-2] ^= 1
	for _, tt := range []struct {
		name   string
		bundle []byte
		want   error
	}{
		{"bad signature", mkBundle(t, "v1.0.0+6", "qemu-x86_64", slot, other, nil), bundle.ErrSignature},
		{"changed part", tampered, bundle.ErrChanged},
		{"other board", mkBundle(t, "v1.0.0+6", "generic-x86_64", slot, bundle.TestPrivateKey(), nil), bundle.ErrBoard},
		{"older", mkBundle(t, "v1.0.0+4", "qemu-x86_64", slot, bundle.TestPrivateKey(), nil), bundle.ErrOlder},
		{"truncated", good[:len(good)-3], bundle.ErrChanged},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newBox(t, "A")
			_, err := b.installer("A", "v1.0.0+5").Apply(context.Background(), bytes.NewReader(tt.bundle), false, nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if e := b.envVars(t); e["try"] != "" || e["slot"] != "A" {
				t.Fatalf("armed after a refusal: %v", e)
			}
			if s, _ := ReadState(b.data); s != nil {
				t.Fatalf("state written after a refusal: %+v", s)
			}
		})
	}
	// Forced, the downgrade goes through.
	b := newBox(t, "A")
	if _, err := b.installer("A", "v1.0.0+5").Apply(context.Background(), bytes.NewReader(mkBundle(t, "v1.0.0+4", "qemu-x86_64", slot, bundle.TestPrivateKey(), nil)), true, nil); err != nil {
		t.Fatalf("forced downgrade: %v", err)
	}
	// A box not booted from the A/B disk installs nothing.
	if _, err := b.installer("", "v1.0.0+5").Apply(context.Background(), bytes.NewReader(good), false, nil); err == nil || !strings.Contains(err.Error(), "did not boot from the A/B disk") {
		t.Fatalf("no slot: %v", err)
	}
	// A slot image larger than the slot.
	in := newBox(t, "A").installer("A", "v1.0.0+5")
	in.SlotSize = 4
	if _, err := in.Apply(context.Background(), bytes.NewReader(good), false, nil); err == nil || !strings.Contains(err.Error(), "the slot 4") {
		t.Fatalf("oversized: %v", err)
	}
}

// The whole cycle on the fake disk: applied on A, GRUB's one-shot try
// consumed, then either a commit on B or a rollback reported on A.
func TestTrialCommitsOrRollsBack(t *testing.T) {
	slot := []byte("slot image")
	bundleB := mkBundle(t, "v1.0.0+6", "qemu-x86_64", slot, bundle.TestPrivateKey(), &bundle.TestFlags{ExitAtStart: true})
	grubBoots := func(b *box) Boot { // what grub.cfg does
		e := b.envVars(t)
		if e["try"] != "" {
			try := e["try"]
			EditEnv(b.env, func(e grubenv.Env) { e["try"] = "" })
			return Boot{Slot: try, Trial: true}
		}
		return Boot{Slot: e["slot"]}
	}
	apply := func(t *testing.T) *box {
		b := newBox(t, "A")
		if _, err := b.installer("A", "v1.0.0+5").Apply(context.Background(), bytes.NewReader(bundleB), false, nil); err != nil {
			t.Fatal(err)
		}
		return b
	}

	t.Run("healthy commits", func(t *testing.T) {
		b := apply(t)
		boot := grubBoots(b)
		st, err := BeginTrial(b.data, boot)
		if err != nil || !st.Test.ExitAtStart {
			t.Fatalf("%+v %v", st, err)
		}
		now := time.Unix(0, 0)
		committed := false
		tr := &Trial{Boot: boot, DataDir: b.data, EnvPath: b.env, To: st.To, CommitAfter: 3 * time.Second, GiveUpAfter: time.Minute,
			Interval: time.Millisecond, Now: func() time.Time { now = now.Add(time.Second); return now },
			Persistent: func() bool { return true }, Committed: func(time.Duration) { committed = true }}
		if err := tr.Run(context.Background()); err != nil || !committed {
			t.Fatalf("%v %v", err, committed)
		}
		if e := b.envVars(t); e["slot"] != "B" || e["try"] != "" {
			t.Fatalf("env %v", e)
		}
		if s, _ := ReadState(b.data); s.Phase != PhaseCommitted {
			t.Fatalf("%+v", s)
		}
		if grubBoots(b) != (Boot{Slot: "B"}) {
			t.Fatal("the committed slot is not booted next")
		}
	})

	t.Run("no data partition never commits", func(t *testing.T) {
		b := apply(t)
		boot := grubBoots(b)
		st, _ := BeginTrial(b.data, boot)
		now := time.Unix(0, 0)
		rebooted := false
		tr := &Trial{Boot: boot, DataDir: b.data, EnvPath: b.env, To: st.To, CommitAfter: 3 * time.Second, GiveUpAfter: 10 * time.Second,
			Interval: time.Millisecond, Now: func() time.Time { now = now.Add(time.Second); return now },
			Persistent: func() bool { return false }, Reboot: func() { rebooted = true }}
		tr.Run(context.Background())
		if !rebooted || b.envVars(t)["slot"] != "A" {
			t.Fatalf("rebooted %v env %v", rebooted, b.envVars(t))
		}
		boot = grubBoots(b)
		msg, err := CheckRollback(b.data, b.env, boot, false)
		if err != nil || !strings.Contains(msg, "update to v1.0.0+6 rolled back: not healthy for 3s within 10s: "+ErrNotPersistent.Error()) {
			t.Fatalf("%q %v", msg, err)
		}
	})

	for _, tt := range []struct {
		name     string
		reason   string // recorded by the trial's PID 1
		watchdog bool
		want     string
	}{
		{"daemon died", "the daemon exited during the trial (exit status 1)", false, "rolled back: the daemon exited during the trial (exit status 1)"},
		{"hang", "", true, "rolled back: it hung and the watchdog reset the box"},
		{"power loss", "", false, "rolled back: the box was reset or lost power before the new firmware committed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := apply(t)
			boot := grubBoots(b)
			if _, err := BeginTrial(b.data, boot); err != nil {
				t.Fatal(err)
			}
			if tt.reason != "" {
				RecordTrialFailure(b.data, tt.reason)
			}
			boot = grubBoots(b) // the reset: try is spent
			if boot != (Boot{Slot: "A"}) {
				t.Fatalf("booted %+v", boot)
			}
			msg, err := CheckRollback(b.data, b.env, boot, tt.watchdog)
			if err != nil || msg != "update to v1.0.0+6 "+tt.want {
				t.Fatalf("%q %v", msg, err)
			}
			if msg, _ := CheckRollback(b.data, b.env, boot, tt.watchdog); msg != "" {
				t.Fatalf("reported twice: %q", msg)
			}
		})
	}
}

func TestParseCmdlineAndParts(t *testing.T) {
	if b := ParseCmdline("console=ttyS1 sipedge.slot=B sipedge.trial=1 quiet"); b != (Boot{Slot: "B", Trial: true}) {
		t.Fatalf("%+v", b)
	}
	if b := ParseCmdline("sipedge.slot=C sipedge.trial=0"); b != (Boot{}) {
		t.Fatalf("%+v", b)
	}
	if PartPath("/dev/vda", 4) != "/dev/vda4" || PartPath("/dev/nvme0n1", 2) != "/dev/nvme0n1p2" {
		t.Fatal("PartPath")
	}
}
