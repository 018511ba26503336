package console

import (
	"context"

	"github.com/sipedge/sipedge/daemon/ctl"
)

// Client calls the daemon's control methods.
type Client interface {
	Call(ctx context.Context, method string, params, result any) error
}

// SocketClient calls the daemon over its control socket.
type SocketClient struct{ Path string }

// Call implements Client.
func (s SocketClient) Call(ctx context.Context, method string, params, result any) error {
	return ctl.Call(ctx, s.Path, method, params, result)
}
