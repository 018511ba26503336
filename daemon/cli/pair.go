package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/sipedge/sipedge/daemon/pair"
)

// pairCommands are the `ctl pair` commands.
func pairCommands() []ctlCommand {
	return []ctlCommand{
		{words: "pair", help: "both boxes of the pair side by side: role, version, VIP groups and holders, Cores, calls, replication lag, last heartbeat", method: pair.MethodPair, print: printPair},
	}
}

func printPair(w io.Writer, raw json.RawMessage) error {
	v, err := decode[pair.View](raw)
	if err != nil {
		return err
	}
	fmt.Fprint(w, pair.Text(v, time.Now(), 100))
	return nil
}
