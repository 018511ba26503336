package app

import "context"

// setupNetwork is filled in by the network subsystem's owner.
func (a *App) setupNetwork(ctx context.Context) error { return nil }
