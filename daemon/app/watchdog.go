package app

import "context"

// setupWatchdog is filled in by the watchdog subsystem's owner.
func (a *App) setupWatchdog(ctx context.Context) error { return nil }
