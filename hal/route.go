package hal

import "net/netip"

// Route is a default route: traffic for anywhere else goes to Gateway
// through Interface.
type Route struct {
	Interface string
	Gateway   netip.Addr
}

// Routes sets and reads the default route (the management gateway).
type Routes interface {
	// SetDefaultRoute makes gw, reached through ifname, the default route
	// of gw's family in the main table, replacing any previous one. It is
	// idempotent.
	SetDefaultRoute(ifname string, gw netip.Addr) error
	// DelDefaultRoute removes the default route of the family (IPv6 when
	// v6); a missing route is not an error.
	DelDefaultRoute(v6 bool) error
	// DefaultRoutes lists the default routes of the main table.
	DefaultRoutes() ([]Route, error)
}

// LinkLister lists every interface (for status: the NICs, the bonds).
type LinkLister interface {
	ListLinks() ([]LinkState, error)
}
