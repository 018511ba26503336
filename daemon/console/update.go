package console

import (
	"context"
	"strings"
	"time"
)

// updateFirmware fetches a signed update bundle from a URL on the
// management network and has the daemon install it (update.apply with
// {url}): verified, written to the inactive slot, checked, then a reboot
// into its one-time trial (daemon/update).
func (c *console) updateFirmware() {
	const method = "update.apply"
	if c.lacks(method) {
		return
	}
	var st struct {
		Version     string `json:"version"`
		Slot        string `json:"slot"`
		Unavailable string `json:"unavailable"`
	}
	if !c.call("update", nil, &st) {
		return
	}
	if st.Slot != "" {
		c.printf("Running %s in slot %s.\n", st.Version, st.Slot)
	} else {
		c.printf("Running %s.\n", st.Version)
	}
	if st.Unavailable != "" {
		c.printf("Updates are not possible now: %s\n", st.Unavailable)
		return
	}
	c.printf("The bundle is fetched over http(s) from a server on the management\nnetwork, checked (signature, board, version), written to the other slot,\nthen the box reboots into it once; it comes back on %s by itself if the\nnew firmware does not prove healthy. A VIP holder hands its VIPs over first.\n", st.Version)
	u, err := c.prompt("Bundle URL (empty cancels): ")
	u = strings.TrimSpace(u)
	if err != nil || u == "" {
		c.printf("Nothing done.\n")
		return
	}
	if !c.confirm("Install it and reboot?") {
		c.printf("Nothing done.\n")
		return
	}
	c.printf("Fetching and writing; this takes a minute...\n")
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Minute)
	defer cancel()
	var res struct {
		Version string `json:"version"`
		Slot    string `json:"slot"`
	}
	if err := c.o.Client.Call(ctx, method, map[string]any{"url": u}, &res); err != nil {
		c.printf("Failed: %v\n", err)
		return
	}
	c.printf("%s written to slot %s and checked: rebooting into its trial.\n", res.Version, res.Slot)
}
