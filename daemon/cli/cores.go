package cli

// coreCommands are the `ctl cores ...` commands (filled in by the balancer).
func coreCommands() []ctlCommand { return nil }
