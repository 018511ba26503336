package resolve

import (
	"strings"

	"github.com/miekg/dns"
)

// records returns the answer's records of type qtype for qname, and for
// the names qname leads to through the answer's CNAME records (a chain
// of at most maxCNAMEs); minTTL is the smallest TTL of those records and
// of the CNAMEs followed (0 when there are none). Records for other
// names are ignored.
func records(m *dns.Msg, qname string, qtype uint16) (rrs []dns.RR, minTTL uint32) {
	name := canonical(qname)
	owners := map[string]bool{name: true}
	var ttls []uint32
	for range maxCNAMEs {
		next := ""
		for _, rr := range m.Answer {
			if c, ok := rr.(*dns.CNAME); ok && canonical(c.Hdr.Name) == name && qtype != dns.TypeCNAME {
				next = canonical(c.Target)
				ttls = append(ttls, c.Hdr.Ttl)
				break
			}
		}
		if next == "" || owners[next] {
			break
		}
		owners[next] = true
		name = next
	}
	for _, rr := range m.Answer {
		h := rr.Header()
		if h.Rrtype == qtype && h.Class == dns.ClassINET && owners[canonical(h.Name)] {
			rrs = append(rrs, rr)
			ttls = append(ttls, h.Ttl)
		}
	}
	if len(rrs) == 0 {
		return nil, 0
	}
	minTTL = ttls[0]
	for _, t := range ttls[1:] {
		minTTL = min(minTTL, t)
	}
	return rrs, minTTL
}

// canonical is a name in lower case with its trailing dot.
func canonical(name string) string { return strings.ToLower(dns.Fqdn(name)) }

// hostName is a name in lower case without its trailing dot.
func hostName(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }
