//go:build !linux

package cli

import (
	"context"
	"fmt"
	"os"
)

func runPID1(context.Context) int {
	fmt.Fprintln(os.Stderr, "sipedge: running as PID 1 is supported on Linux only")
	return 1
}
