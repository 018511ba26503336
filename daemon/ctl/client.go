package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// Call sends one request to the daemon at socket and decodes the result
// into result (which may be nil). Failures are *Error; a daemon that does
// not answer gives CodeUnreachable.
func Call(ctx context.Context, socket, method string, params, result any) error {
	raw, err := CallRaw(ctx, socket, method, params)
	if err != nil {
		return err
	}
	if result != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, result); err != nil {
			return Errorf(CodeInternal, "decode %s result: %v", method, err)
		}
	}
	return nil
}

// CallRaw is Call returning the result's JSON.
func CallRaw(ctx context.Context, socket, method string, params any) (json.RawMessage, error) {
	req := Request{Method: method}
	if params != nil {
		p, err := json.Marshal(params)
		if err != nil {
			return nil, Errorf(CodeBadRequest, "encode params: %v", err)
		}
		req.Params = p
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, Errorf(CodeUnreachable, "no daemon answers on %s: %v", socket, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	} else {
		c.SetDeadline(time.Now().Add(30 * time.Second))
	}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return nil, Errorf(CodeUnreachable, "send to %s: %v", socket, err)
	}
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return nil, Errorf(CodeUnreachable, "read answer from %s: %v", socket, err)
	}
	if !resp.OK {
		if resp.Error == nil {
			return nil, Errorf(CodeInternal, "daemon answered neither result nor error")
		}
		return nil, resp.Error
	}
	return resp.Result, nil
}

// ExitCode maps a call's error to the process exit code of `sipedge ctl`.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	switch CodeOf(err) {
	case CodeBadRequest:
		return 2
	case CodeUnreachable:
		return 3
	case CodeNotFound:
		return 4
	case CodeConflict:
		return 5
	}
	return 1
}

// String formats an error for a terminal.
func String(err error) string { return fmt.Sprintf("sipedge ctl: %v", err) }
