package initd

import (
	"fmt"

	"github.com/sipedge/sipedge/daemon/config"
	"github.com/sipedge/sipedge/hal"
)

// RemoveVIPs deletes every VIP address of cfg from its interface. PID 1
// calls it the moment the daemon dies: the peer takes the VIPs over, and
// this box must not answer ARP for them meanwhile.
func RemoveVIPs(a hal.Addresses, cfg *config.Config) []error {
	var errs []error
	for _, v := range cfg.VIPs {
		if !v.Address.IsValid() || v.Interface == "" {
			continue
		}
		if err := a.DelAddress(v.Interface, v.Address); err != nil {
			errs = append(errs, fmt.Errorf("initd: remove VIP %s (%s) from %s: %w", v.Name, v.Address, v.Interface, err))
		}
	}
	return errs
}
