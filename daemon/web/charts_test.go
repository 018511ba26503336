package web_test

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sipedge/sipedge/daemon/internal/daemontest"
	"github.com/sipedge/sipedge/daemon/internal/sipptest"
	"github.com/sipedge/sipedge/hal/testenv"
)

// TestBrowserCharts: SIPp places a bounded run of calls through the real
// binary to two SIPp Cores; the status page, loaded afterwards in
// headless Chromium, draws the calls-per-second chart from the daemon's
// in-memory history, and the line's data (its data- attributes, not
// pixels) holds the run: as many calls as SIPp placed, at its rate.
func TestBrowserCharts(t *testing.T) {
	chromium := testenv.MustHaveChromium(t)
	testenv.Short(t, "runs SIPp through the daemon and a browser")
	var cores []*core
	for i := range 2 {
		p := testenv.FreePort(t)
		sipptest.Start(t, sipptest.Options{Name: fmt.Sprint("core", i+1), Timeout: 120 * time.Second},
			"-sf", "../balancer/testdata/core_uas.xml", "-p", strconv.Itoa(p))
		cores = append(cores, &core{addr: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	d := startDaemon(t, cores...)
	waitFor(t, "both Cores active", 15*time.Second, func() bool {
		var st struct {
			Cores []struct {
				State string `json:"state"`
			} `json:"cores"`
		}
		d.CtlJSON(&st, "cores")
		return len(st.Cores) == 2 && st.Cores[0].State == "active" && st.Cores[1].State == "active"
	})
	sip := d.sip
	// The run starts once the history samples (once a second).
	waitFor(t, "the history sampling", 10*time.Second, func() bool {
		var h struct {
			Names []string `json:"names"`
		}
		d.CtlJSON(&h, "history")
		return slices.Contains(h.Names, "cps")
	})

	const calls, rate = 300, 40
	start := time.Now()
	caller := sipptest.Start(t, sipptest.Options{Name: "caller", Timeout: 60 * time.Second}, sip,
		"-sf", "../balancer/testdata/caller_uac.xml", "-m", strconv.Itoa(calls), "-r", strconv.Itoa(rate), "-d", "100",
		"-recv_timeout", "5000")
	if err := caller.Wait(40 * time.Second); err != nil {
		t.Fatalf("caller: %v\n%s", err, caller.Output())
	}
	ok := caller.Stat("SuccessfulCall(C)")
	t.Logf("SIPp: %d of %d calls in %v", ok, calls, time.Since(start).Round(time.Millisecond))
	if ok != calls {
		t.Fatalf("SIPp completed %d of %d calls", ok, calls)
	}
	time.Sleep(2500 * time.Millisecond) // the last second sampled

	ctx := daemontest.Browser(t, chromium, d.info.TLSSPKI)
	line := `#charts svg path[data-series="cps"]`
	if err := chromedp.Do(ctx, chromedp.Navigate(d.web+"/"), chromedp.WaitReady(chromedp.CSS(line))); err != nil {
		t.Fatalf("no calls-per-second chart on the page: %v", err)
	}
	attr := func(sel, name string) string {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).getAttribute(%q) || ""`, sel, name)))
		if err != nil {
			t.Fatalf("%s %s: %v", sel, name, err)
		}
		return v
	}
	vals := func(sel string) []float64 {
		var out []float64
		for _, f := range strings.Split(attr(sel, "data-values"), ",") {
			if v, err := strconv.ParseFloat(f, 64); err == nil {
				out = append(out, v)
			}
		}
		return out
	}
	cps := vals(line)
	var sum, peak float64
	busy := 0
	for _, v := range cps {
		sum += v
		peak = math.Max(peak, v)
		if v > 0 {
			busy++
		}
	}
	t.Logf("chart: %d seconds, %d with calls, sum %.1f calls, peak %.1f/s, data-max %s; values %s", len(cps), busy, sum, peak, attr(line, "data-max"), attr(line, "data-values"))
	// Each second's value is the calls routed since the last sample over
	// the time between them (about 1 s): the line's sum is the run.
	if math.Abs(sum-calls) > calls*0.05 {
		t.Errorf("the chart's calls per second add up to %.1f, SIPp placed %d", sum, calls)
	}
	// Room for a busy host: SIPp may fall behind its rate and catch up.
	if peak < rate*0.6 || peak > rate*2 {
		t.Errorf("the chart's peak %.1f calls/s, SIPp ran at %d/s", peak, rate)
	}
	if busy < calls/rate-2 || busy > 2*calls/rate+2 {
		t.Errorf("%d seconds with calls on the chart, the run took about %d", busy, calls/rate)
	}
	if p, _ := strconv.ParseFloat(attr(line, "data-max"), 64); p != peak {
		t.Errorf("data-max %v, the drawn values peak at %v", p, peak)
	}
	// Nothing failed; each Core's probe latency is drawn.
	for _, v := range vals(`#charts path[data-series="failed"]`) {
		if v != 0 {
			t.Fatalf("failed calls on the chart: %v", vals(`#charts path[data-series="failed"]`))
		}
	}
	for _, c := range []string{"core1", "core2"} {
		if lat := vals(`#charts path[data-series="latency:` + c + `"]`); len(lat) == 0 {
			t.Errorf("no latency line for %s", c)
		}
	}
	if d := attr(line, "d"); strings.Count(d, "L") < calls/rate {
		t.Errorf("the line is not drawn: d=%q", d)
	}
	// The last 10 minutes, as the operator would look at a run.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button.span[data-span="600"]`)), chromedp.WaitReady(chromedp.CSS(`button.span.on[data-span="600"]`))); err != nil {
		t.Errorf("10-minute view: %v", err)
	}
	screenshot(ctx, t, "web-charts.png")
}
