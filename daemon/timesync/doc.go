// Package timesync keeps the box's wall clock on time with SNTP (RFC
// 4330) through github.com/beevik/ntp, against the servers of the
// configuration's `time.ntp` (literal IP addresses, optionally with a
// port).
//
// Every poll asks each server once and keeps the valid answer with the
// smallest synchronisation distance (root delay / 2 + root dispersion +
// round trip / 2). An offset larger than the step threshold (1 s by
// default) is stepped at once (adjtimex ADJ_SETOFFSET): at boot the RTC
// may be hours or years off, and slewing one second takes over half an
// hour at the kernel's 500 ppm. A smaller offset is slewed (adjtimex
// ADJ_OFFSET_SINGLESHOT, as adjtime(3)), so that the clock never jumps
// in normal running. Like ntpd's panic threshold, once the clock has
// been set an offset beyond `time.panic` (1000 s) is refused and raised
// as an alarm: only the first sync after start may move the clock by
// more. With `time.adjust: false` the clock is only measured.
//
// The clock is an interface (Clock) so that tests inject one: the
// development machine's clock is never touched by a test.
package timesync
