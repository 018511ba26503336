package web

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
)

// BuildInfo is the sipedge_build_info metric: always 1, with the
// firmware version and Go version as labels.
func BuildInfo(version string) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "sipedge_build_info",
		Help:        "Firmware build: version and Go version (always 1).",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	g.Set(1)
	return g
}
