package balancer

import (
	"strconv"
	"testing"
)

// TestBranchSeq: every branch newBranch writes reads back to its number,
// and nothing else is taken for one of ours.
func TestBranchSeq(t *testing.T) {
	const prefix = "z9hG4bKsbab12cd34."
	for _, n := range []uint64{1, 35, 36, 1295, 1 << 40, 1<<64 - 1} {
		br := prefix + strconv.FormatUint(n, 36)
		got, ok := branchSeq(prefix, br)
		if !ok || got != n {
			t.Errorf("branchSeq(%q) = %d, %v; want %d", br, got, ok, n)
		}
		if got, ok := branchSeq(prefix, []byte(br)); !ok || got != n {
			t.Errorf("branchSeq([]byte %q) = %d, %v; want %d", br, got, ok, n)
		}
	}
	for _, br := range []string{
		"",
		prefix,                             // no number
		"z9hG4bKsbffffffff.1",              // another instance's
		"z9hG4bKspab12cd34.1",              // a probe's
		"z9hG4bK-caller-1",                 // a caller's
		prefix + "01",                      // leading zero: "1" is the only form of 1
		prefix + "0",                       // never written (the sequence starts at 1)
		prefix + "A",                       // capital
		prefix + "1.2",                     // not base 36
		prefix + "3w5e11264sgsg",           // 2^64: overflow
		prefix + "zzzzzzzzzzzzzzzzzzzzzzz", // overflow
	} {
		if n, ok := branchSeq(prefix, br); ok {
			t.Errorf("branchSeq(%q) = %d, taken for one of ours", br, n)
		}
	}
}

// TestBranchTable: put, get by string and by bytes, del.
func TestBranchTable(t *testing.T) {
	b := &Balancer{branchPrefix: "z9hG4bKsbab12cd34."}
	tab := newBranchTable(b.branchPrefix)
	var cts []*clientTx
	var brs []string
	for i := 0; i < 200; i++ {
		b.seq.Add(1)
		br := b.branchPrefix + strconv.FormatUint(b.seq.Load(), 36)
		ct := &clientTx{branch: br}
		tab.put(br, ct)
		cts, brs = append(cts, ct), append(brs, br)
	}
	tab.put("z9hG4bK-foreign", &clientTx{})
	if tab.len() != 200 {
		t.Fatalf("len %d, want 200 (a foreign branch is not filed)", tab.len())
	}
	for i, br := range brs {
		if ct, ok := tab.get(br); !ok || ct != cts[i] {
			t.Fatalf("get(%q) = %p, %v; want %p", br, ct, ok, cts[i])
		}
		if ct, ok := tab.getBytes([]byte(br)); !ok || ct != cts[i] {
			t.Fatalf("getBytes(%q) = %p, %v; want %p", br, ct, ok, cts[i])
		}
	}
	for _, br := range brs[:100] {
		tab.del(br)
	}
	if _, ok := tab.get(brs[0]); ok || tab.len() != 100 {
		t.Errorf("after deleting half: get(first) found %v, len %d", ok, tab.len())
	}
	n := 0
	tab.each(func(ct *clientTx) bool { n++; return ct != cts[150] })
	if _, ok := tab.get(brs[150]); n != 100 || ok {
		t.Errorf("each saw %d, dropping one left it: %v", n, ok)
	}
}
