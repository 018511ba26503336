package app

import "context"

// setupBalancer is filled in by the balancer subsystem's owner.
func (a *App) setupBalancer(ctx context.Context) error { return nil }
