package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/sipedge/sipedge/daemon/ctl"
)

// MethodUpdateApply is the control method an uploaded bundle goes to
// (daemon/update.MethodApply).
const MethodUpdateApply = "update.apply"

// MethodUpdate is the firmware's status (version, slot, last update).
const MethodUpdate = "update"

// MaxUpload bounds an uploaded update bundle (a 64 MiB slot image and
// its header).
const MaxUpload = 65<<20 + 128<<10

// updateTimeout bounds writing and checking the slot.
const updateTimeout = 5 * time.Minute

// uploadUpdate takes a signed update bundle as the request body
// (POST /api/update[?force=1], the session cookie and the CSRF header
// like every action), stores it in UploadDir and has the daemon apply
// it: verified, written to the inactive slot, checked, then a reboot
// into its trial. From a management host:
//
//	csrf=$(curl -sk -c jar https://BOX/api/session | jq -r .csrf)
//	csrf=$(curl -sk -b jar -c jar -H "X-CSRF-Token: $csrf" -d '{"password":"..."}' https://BOX/api/login | jq -r .csrf)
//	curl -sk -b jar -H "X-CSRF-Token: $csrf" --data-binary @sipedge-update.bundle https://BOX/api/update
func (s *Server) uploadUpdate(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r); !ok {
		s.actions.WithLabelValues(MethodUpdateApply, "refused").Inc()
		return
	}
	if !s.has(MethodUpdateApply) {
		writeErr(w, http.StatusNotFound, CodeNotAvailable, "updates are not available on this box")
		return
	}
	// A bundle takes longer than the server's read and write timeouts.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(updateTimeout))
	rc.SetWriteDeadline(time.Now().Add(2 * updateTimeout))
	if r.ContentLength > MaxUpload {
		writeErr(w, http.StatusRequestEntityTooLarge, ctl.CodeBadRequest, fmt.Sprintf("a bundle is at most %d bytes", MaxUpload))
		return
	}
	f, err := os.CreateTemp(s.opts.UploadDir, "upload-*.bundle")
	if err != nil {
		writeErr(w, http.StatusInternalServerError, ctl.CodeInternal, "storing the upload: "+err.Error())
		return
	}
	defer os.Remove(f.Name())
	n, err := io.Copy(f, http.MaxBytesReader(w, r.Body, MaxUpload))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeErr(w, http.StatusRequestEntityTooLarge, ctl.CodeBadRequest, fmt.Sprintf("a bundle is at most %d bytes", MaxUpload))
			return
		}
		writeErr(w, http.StatusBadRequest, ctl.CodeBadRequest, "upload cut short: "+err.Error())
		return
	}
	params, _ := json.Marshal(map[string]any{"file": f.Name(), "force": r.URL.Query().Get("force") == "1"})
	ctx, cancel := context.WithTimeout(r.Context(), updateTimeout)
	defer cancel()
	res, err := s.opts.Ctl.Call(ctx, MethodUpdateApply, params)
	result := "ok"
	if err != nil {
		result = ctl.CodeOf(err)
	}
	addr, _ := clientAddr(r)
	s.actions.WithLabelValues(MethodUpdateApply, result).Inc()
	s.log.Info("web action", "method", MethodUpdateApply, "bytes", n, "remote", addr.String(), "result", result)
	s.reply(w, res, err)
}
