package tlsconf

import "github.com/prometheus/client_golang/prometheus"

// ExpirySource is material whose files' expiry is exported: a Store, a
// Client.
type ExpirySource interface {
	Expiries() []Expiry
}

// Collector exports sipedge_tls_certificate_expiry_seconds for its
// sources, read at every scrape (a Reload shows at the next one).
type Collector struct {
	sources []ExpirySource
	desc    *prometheus.Desc
}

// NewCollector returns the collector of the sources' expiries; register
// it once on the daemon's registry.
func NewCollector(sources ...ExpirySource) *Collector {
	return &Collector{
		sources: sources,
		desc:    prometheus.NewDesc("sipedge_tls_certificate_expiry_seconds", expiryHelp, []string{"file", "role"}, nil),
	}
}

const expiryHelp = "When a loaded TLS file expires, as a Unix time in seconds: the earliest NotAfter of the certificates in the file " +
	"(role server: presented to callers; client: presented to the Cores; ca: a CA peers must chain to). " +
	"Alert on (this - time()) < 14*86400."

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector. A file listed twice in one
// role (the same CA for callers and Cores is two roles) is exported
// once, with its earliest expiry.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	type key struct{ file, role string }
	seen := map[key]float64{}
	var order []key
	for _, s := range c.sources {
		for _, e := range s.Expiries() {
			k := key{e.File, e.Role}
			v := float64(e.NotAfter.Unix())
			if old, ok := seen[k]; ok {
				seen[k] = min(old, v)
				continue
			}
			seen[k] = v
			order = append(order, k)
		}
	}
	for _, k := range order {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, seen[k], k.file, k.role)
	}
}
