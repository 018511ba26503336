package request

import (
	"bytes"
	"strconv"

	"github.com/emiago/sipgo/sip"
)

// Max-Forwards (RFC 3261 16.3 step 3, 16.6 step 3): read on both
// backings the same way, decremented when forwarded, 70 added after the
// last header when missing, 400 for a value that is not 1*DIGIT between
// SP/HTAB.

// MaxForwards is the request's Max-Forwards; ok false when it has none.
func (r *Request) MaxForwards() (n int, ok bool) {
	if r.req != nil {
		mf := r.req.MaxForwards()
		if mf == nil {
			return 0, false
		}
		return int(*mf), true
	}
	if r.raw.mf < 0 {
		return 0, false
	}
	return r.raw.mf, true
}

// tidyMaxForwards is the parsed backing's edit: one less, or 70 added.
// The raw backing's is editMaxForwards, made while forwarding.
func tidyMaxForwards(req *sip.Request) {
	if mf := req.MaxForwards(); mf == nil {
		m := sip.MaxForwardsHeader(70)
		req.AppendHeader(&m)
	} else if *mf > 0 {
		mf.Dec()
	}
}

// MaxForwardsValue reads a Max-Forwards value from its header line
// (colon: the index of ':'): 1*DIGIT between SIP whitespace (SP, HTAB),
// and its byte range in line. ok is false for anything else (a vertical
// tab, a no-break space: trimmed one way and located another, they
// turned "Max-Forwards:\v5" into 45 once), which intake answers 400.
func MaxForwardsValue(line []byte, colon int) (n, from, to int, ok bool) {
	from, to = colon+1, len(line)
	for from < to && (line[from] == ' ' || line[from] == '\t') {
		from++
	}
	for to > from && (line[to-1] == ' ' || line[to-1] == '\t') {
		to--
	}
	if to == from || to-from > 9 {
		return 0, 0, 0, false
	}
	for _, c := range line[from:to] {
		if c < '0' || c > '9' {
			return 0, 0, 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, from, to, true
}

// badMaxForwards reports whether a request's Max-Forwards (any of them)
// is not plain digits, or is folded over lines: the full path's check
// (intake), which the raw scan makes as it reads.
func badMaxForwards(p []byte) bool {
	i := bytes.IndexByte(p, '\n')
	if i < 0 {
		return false
	}
	prevMF := false
	for i++; i < len(p); {
		h, last, ok := NextHeader(p, i)
		if !ok || last {
			return false
		}
		i = h.Next
		if h.Folded() {
			if prevMF {
				return true
			}
			continue
		}
		prevMF = h.Colon > 0 && HeaderIs(h.Name, "Max-Forwards", 0)
		if _, _, _, ok := MaxForwardsValue(h.Line, h.Colon); prevMF && !ok {
			return true
		}
	}
	return false
}

// appendMaxForwardsEdit is the raw backing's edit: the value, one less,
// or a header line of 70 where the headers end when there was none.
func (r *raw) appendMaxForwardsEdit(buf []byte) []byte {
	if r.mf < 0 {
		return append(buf, "Max-Forwards: 70\r\n"...)
	}
	return strconv.AppendInt(buf, int64(r.mf-1), 10)
}
