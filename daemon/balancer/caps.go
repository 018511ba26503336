package balancer

import "strconv"

// Bounded state: the dialog table, the server transactions and the
// client transactions (branches) each have a cap (Options.MaxDialogs,
// MaxTransactions, MaxBranches). A new call or request that would pass
// one is answered 503 with Retry-After (an ACK, which gets no answer,
// is dropped); what is already in the tables goes on, so calls up keep
// working. The last tenth of each cap is kept for Cores and trusted
// sources: a flood from outside fills nine tenths and no more. Counts
// are the shard maps' own (shardMap.n), read without a lock.

// What a request was refused at (Stats.AtCap,
// sipedge_sip_at_cap_total{table}).
const (
	capDialogs = iota
	capTransactions
	capBranches
)

var capReasons = [...]string{"dialogs", "transactions", "branches"}

// room reports whether a table holding n entries, capped at limit, may
// take one more for a source (trusted: the whole cap; else nine tenths).
func room(n int64, limit int, trusted bool) bool {
	if !trusted {
		limit -= limit / 10
	}
	return n < int64(limit)
}

// roomFor checks one table's cap for a new entry, counting a refusal.
func (b *Balancer) roomFor(table int, trusted bool) bool {
	if b.hasRoom(table, trusted) {
		return true
	}
	b.stats.AtCap[table].Add(1)
	return false
}

// hasRoom is roomFor without the count: a raw path that declines at a
// cap leaves the answer, and the count, to the full path.
func (b *Balancer) hasRoom(table int, trusted bool) bool {
	var n int64
	var limit int
	switch table {
	case capDialogs:
		n, limit = b.dialogs.m.n.Load(), b.opt.MaxDialogs
	case capTransactions:
		n, limit = b.stx.n.Load(), b.opt.MaxTransactions
	case capBranches:
		n, limit = b.ctx.m.n.Load(), b.opt.MaxBranches
	}
	return room(n, limit, trusted)
}

// retryAfter is the Retry-After header line of our own 503s.
func (b *Balancer) retryAfter() string {
	return "Retry-After: " + strconv.Itoa(b.opt.RetryAfter) + "\r\n"
}
