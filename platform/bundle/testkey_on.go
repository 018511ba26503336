//go:build sipedge_testkey

package bundle

// Built with -tags sipedge_testkey (the QEMU tests' images only): the
// test key verifies bundles.
func init() { testKeyEnabled = true }
