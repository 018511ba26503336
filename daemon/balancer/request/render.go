package request

import (
	"bytes"
	"strconv"
	"sync"

	"github.com/emiago/sipgo/sip"
)

// Rendering of the messages the balancer forwards after a sipgo parse
// (the parsed backing's forward, and responses that took the full path).
// It writes what sipgo's StringWrite writes, byte for byte
// (TestRenderMatchesSipgo), without its allocations: sipgo renders a
// Via, a URI and its parameters into a fresh strings.Builder each, and
// every port and CSeq number through strconv.Itoa, on every message.

// BufPool holds the buffers rendering and forwarding use.
var BufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Render returns m as it goes on the wire.
func Render(m sip.Message) []byte {
	buf := BufPool.Get().(*bytes.Buffer)
	buf.Reset()
	writeMessage(buf, m)
	out := bytes.Clone(buf.Bytes())
	if buf.Cap() <= 64<<10 {
		BufPool.Put(buf)
	}
	return out
}

func writeMessage(buf *bytes.Buffer, m sip.Message) {
	var hs []sip.Header
	switch m := m.(type) {
	case *sip.Request:
		if m.CompactHeaders {
			m.StringWrite(buf)
			return
		}
		buf.WriteString(string(m.Method))
		buf.WriteByte(' ')
		writeURI(buf, &m.Recipient)
		buf.WriteByte(' ')
		buf.WriteString(m.SipVersion)
		hs = m.Headers()
	case *sip.Response:
		if m.CompactHeaders {
			m.StringWrite(buf)
			return
		}
		buf.WriteString(m.SipVersion)
		buf.WriteByte(' ')
		writeInt(buf, int64(m.StatusCode))
		buf.WriteByte(' ')
		buf.WriteString(m.Reason)
		hs = m.Headers()
	default:
		m.StringWrite(buf)
		return
	}
	buf.WriteString("\r\n")
	for _, h := range hs {
		WriteHeader(buf, h)
		buf.WriteString("\r\n")
	}
	buf.WriteString("\r\n")
	buf.Write(m.Body())
}

// HeaderLine writes h and CRLF; nil writes nothing.
func HeaderLine(buf *bytes.Buffer, h sip.Header) {
	if h == nil {
		return
	}
	WriteHeader(buf, h)
	buf.WriteString("\r\n")
}

// WriteHeader writes "Name: value" as h.StringWrite does.
func WriteHeader(buf *bytes.Buffer, h sip.Header) {
	switch h := h.(type) {
	case *sip.ViaHeader:
		buf.WriteString("Via: ")
		buf.WriteString(h.ProtocolName)
		buf.WriteByte('/')
		buf.WriteString(h.ProtocolVersion)
		buf.WriteByte('/')
		buf.WriteString(h.Transport)
		buf.WriteByte(' ')
		writeHostPort(buf, h.Host, h.Port)
		writeParams(buf, h.Params)
	case *sip.ToHeader:
		buf.WriteString("To: ")
		if h.DisplayName != "" {
			buf.WriteByte('"')
			buf.WriteString(h.DisplayName)
			buf.WriteString("\" ")
		}
		buf.WriteByte('<')
		writeURI(buf, &h.Address)
		buf.WriteByte('>')
		writeParams(buf, h.Params)
	case *sip.RouteHeader:
		buf.WriteString("Route: <")
		writeURI(buf, &h.Address)
		buf.WriteByte('>')
	case *sip.RecordRouteHeader:
		buf.WriteString("Record-Route: <")
		writeURI(buf, &h.Address)
		buf.WriteByte('>')
	case *sip.CSeqHeader:
		buf.WriteString("CSeq: ")
		writeInt(buf, int64(h.SeqNo))
		buf.WriteByte(' ')
		buf.WriteString(string(h.MethodName))
	case *sip.MaxForwardsHeader:
		buf.WriteString("Max-Forwards: ")
		writeInt(buf, int64(*h))
	case *sip.ContentLengthHeader:
		buf.WriteString("Content-Length: ")
		writeInt(buf, int64(*h))
	default:
		h.StringWrite(buf)
	}
}

// writeParams writes ";" and the parameters, when there are any.
func writeParams(buf *bytes.Buffer, p sip.HeaderParams) {
	if len(p) > 0 {
		buf.WriteByte(';')
		p.ToStringWrite(';', buf)
	}
}

// writeURI writes u as sip.Uri.StringWrite does.
func writeURI(buf *bytes.Buffer, u *sip.Uri) {
	if u.Scheme == "" {
		buf.WriteString("sip")
	} else {
		buf.WriteString(u.Scheme)
	}
	buf.WriteByte(':')
	if raw := u.Raw(); raw != "" {
		buf.WriteString(raw)
		return
	}
	if u.HierarhicalSlashes {
		buf.WriteString("//")
	}
	if u.User != "" {
		buf.WriteString(u.User)
		if u.Password != "" {
			buf.WriteByte(':')
			buf.WriteString(u.Password)
		}
		buf.WriteByte('@')
	}
	writeHostPort(buf, u.Host, u.Port)
	writeParams(buf, u.UriParams)
	if len(u.Headers) > 0 {
		buf.WriteByte('?')
		u.Headers.ToStringWrite('&', buf)
	}
}

// writeHostPort writes host (an IPv6 literal in brackets, as sipgo's
// uriIP: an address net.ParseIP reads as IPv6, which excludes zones and
// IPv4-mapped forms) and ":port" when port is set.
func writeHostPort(buf *bytes.Buffer, host string, port int) {
	buf.Write(AppendHostPort(buf.AvailableBuffer(), host, port))
}

func writeInt(buf *bytes.Buffer, n int64) {
	var b [20]byte
	buf.Write(strconv.AppendInt(b[:0], n, 10))
}
