package app

import "context"

// setupFailover is filled in by the failover subsystem's owner.
func (a *App) setupFailover(ctx context.Context) error { return nil }
