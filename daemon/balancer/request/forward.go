package request

import (
	"bytes"

	"github.com/emiago/sipgo/sip"
)

// Forwarding (RFC 3261 16.6): the request with our Via on top, then
// the lines in extra (our Record-Route), then its own headers with
// Max-Forwards one less, received and rport in its top Via, and our
// Route entries gone. The raw backing copies the bytes as received with
// those edits made in passing; the parsed one is tidied once (tidy) and
// rendered. Neither changes what a later attempt forwards: a failover
// forwards again with another branch.

// Via is our Via: the sending listener's transport, host and port.
type Via struct {
	Transport string // as in a Via: "UDP", "TCP"
	Host      string
	Port      int
}

// AppendVia appends "Via: SIP/2.0/TP host:port;branch=BRANCH\r\n".
func AppendVia[S string | []byte](buf []byte, v Via, branch S) []byte {
	buf = append(buf, "Via: SIP/2.0/"...)
	buf = append(buf, v.Transport...)
	buf = append(buf, ' ')
	buf = AppendHostPort(buf, v.Host, v.Port)
	buf = append(buf, ";branch="...)
	buf = append(buf, branch...)
	return append(buf, "\r\n"...)
}

// AppendForward appends r as forwarded to buf: the start line, our Via
// with branch, the lines in extra, then the rest.
func AppendForward[S string | []byte](r *Request, buf []byte, via Via, branch S, extra string) []byte {
	if r.req != nil {
		return r.appendParsed(buf, AppendVia(nil, via, branch), extra)
	}
	p := r.raw.p
	buf = append(buf, p[:r.raw.eol+1]...)
	buf = AppendVia(buf, via, branch)
	buf = append(buf, extra...)
	pos := r.raw.eol + 1
	for _, d := range r.raw.drop[:r.raw.ndrop] {
		buf = r.AppendRange(buf, pos, d.from)
		pos = d.to
	}
	return r.AppendRange(buf, pos, len(p))
}

// tidy applies the forwarding edits to a parsed request, once:
// Max-Forwards (tidyMaxForwards) and our Route entries
// (stripOwnRoutes); received and rport were filled when it was read.
func (r *Request) tidy() {
	if r.tidied {
		return
	}
	r.tidied = true
	tidyMaxForwards(r.req)
	r.stripOwnRoutes()
}

// appendParsed renders the tidied parsed request with via and extra on
// top, as sipgo would render it with those headers prepended.
func (r *Request) appendParsed(buf, via []byte, extra string) []byte {
	r.tidy()
	b := bytes.NewBuffer(buf)
	req := r.req
	b.WriteString(string(req.Method))
	b.WriteByte(' ')
	writeURI(b, &req.Recipient)
	b.WriteByte(' ')
	b.WriteString(req.SipVersion)
	b.WriteString("\r\n")
	b.Write(via)
	b.WriteString(extra)
	for _, h := range req.Headers() {
		WriteHeader(b, h)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	b.Write(req.Body())
	return b.Bytes()
}

// Tidied is the parsed request with the forwarding edits made (tidy):
// for the balancer's own requests built from it (our ACK and CANCEL).
func (r *Request) Tidied() *sip.Request {
	if r.req != nil {
		r.tidy()
	}
	return r.req
}

// edit is one change AppendRange makes to the raw bytes: p[at:end]
// replaced (end == at: an insertion).
type edit struct {
	at, end int
	kind    uint8
}

const (
	editMaxForwards = iota // maxforwards.go
	editRport              // via.go
	editReceived           // via.go
)

// edits returns the raw backing's edits in the order they come in p.
func (r *Request) edits(dst *[3]edit) []edit {
	e := dst[:0]
	if r.raw.mf > 0 && r.raw.mfFrom >= 0 {
		e = append(e, edit{r.raw.mfFrom, r.raw.mfTo, editMaxForwards})
	} else if r.raw.mf < 0 && r.raw.end >= 2 {
		e = append(e, edit{r.raw.end - 2, r.raw.end - 2, editMaxForwards})
	}
	if r.raw.rportAt >= 0 {
		e = append(e, edit{r.raw.rportAt, r.raw.rportAt, editRport})
	}
	if r.raw.recvAt >= 0 {
		e = append(e, edit{r.raw.recvAt, r.raw.recvAt, editReceived})
	}
	for i := 1; i < len(e); i++ {
		for j := i; j > 0 && e[j].at < e[j-1].at; j-- {
			e[j], e[j-1] = e[j-1], e[j]
		}
	}
	return e
}

// AppendRange appends the raw bytes p[from:to] with the edits that fall
// inside them made.
func (r *Request) AppendRange(buf []byte, from, to int) []byte {
	p := r.raw.p
	var arr [3]edit
	for _, e := range r.edits(&arr) {
		if e.at < from || e.end > to {
			continue
		}
		buf = append(buf, p[from:e.at]...)
		switch e.kind {
		case editMaxForwards:
			buf = r.raw.appendMaxForwardsEdit(buf)
		case editRport:
			buf = r.appendRportEdit(buf)
		case editReceived:
			buf = r.appendReceivedEdit(buf)
		}
		from = e.end
	}
	return append(buf, p[from:to]...)
}
