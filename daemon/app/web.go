package app

import "context"

// setupWeb is filled in by the web subsystem's owner.
func (a *App) setupWeb(ctx context.Context) error { return nil }
