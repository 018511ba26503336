package daemontest

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Browser starts a headless Chromium (the binary chromium, from
// testenv.MustHaveChromium) for the test, stopped at its end and after
// 120 s at most. With spki set it accepts exactly the self-signed
// certificate whose public key that is (as `ctl web` gives it).
func Browser(t testing.TB, chromium, spki string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 1100),
	)
	if spki != "" {
		// Any other certificate is still an error.
		opts = append(opts, chromedp.Flag("ignore-certificate-errors-spki-list", spki))
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancel)
	ctx, cancelT := context.WithTimeout(ctx, 120*time.Second)
	t.Cleanup(cancelT)
	return ctx
}
