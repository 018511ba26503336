// Package faulttest holds the fault tests of the whole daemon: the real
// binary (testenv.SipedgeBinary) with SIPp callers and Cores, under
// attack and faults, each bounded in time and count.
//
//   - TestFloodWhileTrustedCalls: an INVITE flood at ten times the lab's
//     capacity from one untrusted source while a trusted caller places
//     calls.
//   - TestDiskFullKeepsRouting: the data partition (a small tmpfs) fills
//     up while calls go through and bans are written.
//   - TestKill9WhileChangingCores: kill -9 of the daemon (x100) while
//     clients change its Core pool through the control socket; it must
//     start again on the same data dir and hold every acknowledged change.
//
// A Core killed during load is daemon/balancer's TestCoreKilledMidRun;
// kill -9 of the store package alone (x100) and the store-level disk-full
// are in daemon/store/crash_test.go; the heartbeat link cut is
// daemon/failover's.
package faulttest
