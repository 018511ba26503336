package edge

import "bytes"

var userAgent = []byte("user-agent")

// isScanner finds the User-Agent header in a raw message's headers and
// tells whether its value contains one of scanners (lower case). It reads
// the header lines only, in place, without allocating.
func isScanner(data []byte, scanners [][]byte) bool {
	// skip the start line
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		return false
	}
	for p := data[i+1:]; len(p) > 0; {
		j := bytes.IndexByte(p, '\n')
		line := p
		if j >= 0 {
			line, p = p[:j], p[j+1:]
		} else {
			p = nil
		}
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) == 0 {
			return false // end of headers
		}
		k := bytes.IndexByte(line, ':')
		if k < 0 || !bytes.EqualFold(bytes.TrimSpace(line[:k]), userAgent) {
			continue
		}
		v := line[k+1:]
		for _, s := range scanners {
			if containsFold(v, s) {
				return true
			}
		}
	}
	return false
}

// containsFold reports whether s contains sub (lower case ASCII),
// ignoring ASCII case in s.
func containsFold(s, sub []byte) bool {
	if len(sub) == 0 {
		return true
	}
	for i := 0; i+len(sub) <= len(s); i++ {
		ok := true
		for j, c := range sub {
			d := s[i+j]
			if 'A' <= d && d <= 'Z' {
				d += 'a' - 'A'
			}
			if d != c {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}
