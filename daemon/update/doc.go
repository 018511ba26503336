// Package update installs signed firmware bundles (platform/bundle) on
// the appliance's A/B disk (platform/image: boot, slot A, slot B, data)
// and runs the trial boot that follows.
//
// Apply verifies a bundle's signature, board and version, writes its
// slot image to the inactive slot while the box keeps running, reads the
// slot back and hashes it, records the pending update in the data
// partition (State) and sets GRUB's one-shot `try` in the boot
// partition's environment block. On the trial boot GRUB clears `try`
// before it starts the new slot, so every reset before the commit (a
// crash, the watchdog, a failed health check, a power cut) boots the old
// slot again. The new firmware commits (`slot=` in the environment
// block) only after it has been healthy for the configured time with the
// data partition mounted (Trial). The old firmware, booted again,
// records "update to X rolled back: why" (CheckRollback).
package update
