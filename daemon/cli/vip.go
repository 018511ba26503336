package cli

// vipCommands are the `ctl vip ...` commands (filled in by failover).
func vipCommands() []ctlCommand { return nil }
