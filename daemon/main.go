// Command sipedge is the firmware of the sipedge VoIP appliance: the SIP
// balancer, the virtual-IP failover, the control client and, as PID 1,
// the init of the appliance image. See README.md.
package main

import (
	"context"
	"os"

	"github.com/sipedge/sipedge/daemon/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args))
}
