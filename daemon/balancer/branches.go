package balancer

import "math"

// branchTable holds the client transactions by the branch of our Via.
// Every branch the balancer puts there is its own: branchPrefix and a
// sequence number in base 36 (newBranch). The number is the key: an
// integer map, so a lookup hashes and compares no string (a Core's
// response is half the messages of a call, and string-keyed lookups in
// tables of tens of thousands of lingering transactions were the
// largest user-space cost left after parsing).
type branchTable struct {
	prefix string
	m      *shardMap[uint64, *clientTx]
}

func newBranchTable(prefix string) *branchTable {
	return &branchTable{prefix: prefix, m: newSeqMap[*clientTx]()}
}

// branchSeq reads the sequence number out of one of our branches; false
// for any other branch, and for a form newBranch does not write (a
// leading zero, a capital, overflow), so that one number has one branch.
func branchSeq[S string | []byte](prefix string, br S) (uint64, bool) {
	if len(br) <= len(prefix) || string(br[:len(prefix)]) != prefix {
		return 0, false
	}
	d := br[len(prefix):]
	if d[0] == '0' {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(d); i++ {
		c := d[i]
		var v uint64
		switch {
		case '0' <= c && c <= '9':
			v = uint64(c - '0')
		case 'a' <= c && c <= 'z':
			v = uint64(c-'a') + 10
		default:
			return 0, false
		}
		if n > (math.MaxUint64-v)/36 {
			return 0, false
		}
		n = n*36 + v
	}
	return n, true
}

// put files ct under br, one of ours (a foreign branch is never put:
// nothing would find it).
func (t *branchTable) put(br string, ct *clientTx) {
	if k, ok := branchSeq(t.prefix, br); ok {
		t.m.put(k, ct)
	}
}

func (t *branchTable) get(br string) (*clientTx, bool) {
	if k, ok := branchSeq(t.prefix, br); ok {
		return t.m.get(k)
	}
	return nil, false
}

// getBytes is get with the branch in bytes, as scanned from a datagram.
func (t *branchTable) getBytes(br []byte) (*clientTx, bool) {
	if k, ok := branchSeq(t.prefix, br); ok {
		return t.m.get(k)
	}
	return nil, false
}

func (t *branchTable) del(br string) {
	if k, ok := branchSeq(t.prefix, br); ok {
		t.m.del(k)
	}
}

func (t *branchTable) len() int { return t.m.len() }

// each calls fn for every client transaction, a shard at a time under
// its lock; fn returns false to drop it.
func (t *branchTable) each(fn func(ct *clientTx) (keep bool)) {
	t.m.each(func(_ uint64, ct *clientTx) bool { return fn(ct) })
}
