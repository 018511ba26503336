// Package ctl is the daemon's control channel: a unix socket (mode 0600)
// carrying one JSON request and one JSON response per connection.
//
//	request:  {"method": "cores.drain", "params": {...}}
//	response: {"ok": true, "result": ...}
//	          {"ok": false, "error": {"code": "not_found", "message": "..."}}
//
// The server lets each subsystem register its methods; the client is what
// `sipedge ctl` uses.
package ctl

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Request is one call.
type Request struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params,omitempty"`
}

// Response is the answer to one call.
type Response struct {
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`
}

// Error codes.
const (
	CodeBadRequest  = "bad_request" // malformed params, unknown method
	CodeNotFound    = "not_found"   // no such core, VIP group, ...
	CodeConflict    = "conflict"    // the state does not allow it now
	CodeInternal    = "internal"    // the daemon failed
	CodeUnreachable = "unreachable" // client side: no daemon answered
)

// Error is a structured failure of a call.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with the given code.
func Errorf(code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns err's code (CodeInternal for plain errors).
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// DecodeParams unmarshals params into v, reporting bad_request on failure.
func DecodeParams(params json.RawMessage, v any) error {
	if len(params) == 0 {
		return nil
	}
	if err := json.Unmarshal(params, v); err != nil {
		return Errorf(CodeBadRequest, "bad params: %v", err)
	}
	return nil
}
