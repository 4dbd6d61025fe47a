package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/securevision/events/bench"
	"github.com/securevision/events/httpd/ui"
)

// Dashboard budgets: the page's own assets, gzip-compressed as served,
// and the time from navigation to the first event cards on screen.
const (
	targetUIAssetsGzip  = 150 << 10
	targetUIFirstEvents = time.Second
	// uiRuns navigations: the first with an empty browser cache, the
	// others revalidating it.
	uiRuns = 5
	// uiChromium is where Debian's chromium package installs the browser.
	uiChromium = "/usr/bin/chromium"
)

// uiFirstCardScript runs in the page before its own scripts (injected over
// DevTools, so the page's CSP does not apply to it) and records, on the
// page's clock (milliseconds since navigation start), when the first
// event card is in the document.
const uiFirstCardScript = `(() => {
  const seen = () => { if (!window.__svFirstCard && document.querySelector('.card')) window.__svFirstCard = performance.now(); };
  new MutationObserver(seen).observe(document, { childList: true, subtree: true });
})();`

// runUI measures the dashboard against the query store: the assets'
// size, and the time from navigation to first events in headless
// Chromium.
func runUI(e *env, s *bench.Section) error {
	t := bench.Table{Header: []string{"asset", "bytes", "gzip bytes"}}
	total, totalRaw := 0, 0
	for _, a := range ui.Assets() {
		t.Rows = append(t.Rows, []string{a.Name, strconv.Itoa(a.Bytes), strconv.Itoa(a.Gzip)})
		total += a.Gzip
		totalRaw += a.Bytes
	}
	t.Rows = append(t.Rows, []string{"**total**", strconv.Itoa(totalRaw), strconv.Itoa(total)})
	s.Tables = append(s.Tables, t)
	s.Check("the page's own assets, gzipped", fmt.Sprintf("≤ %d KiB", targetUIAssetsGzip>>10),
		fmt.Sprintf("%.1f KiB", float64(total)/1024), total <= targetUIAssetsGzip)

	if _, err := os.Stat(uiChromium); err != nil {
		s.Notes = append(s.Notes, fmt.Sprintf("**First events not measured:** %s is missing (make deps installs chromium).", uiChromium))
		return nil
	}
	info, err := e.queryStore()
	if err != nil {
		return err
	}
	srv, err := e.startServer(info.Dir, s)
	if err != nil {
		return err
	}
	defer e.stopServer(srv)

	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Minute)
	defer cancel()
	profile, err := os.MkdirTemp(e.cfg.workDir, "chromium-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(profile)
	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(uiChromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1920, 1080),
	)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Do(bctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: uiFirstCardScript})
		return err
	})); err != nil {
		return fmt.Errorf("chromium: %w", err)
	}
	s.Commands = append(s.Commands, fmt.Sprintf("%s --headless --no-sandbox --disable-gpu --disable-background-networking --window-size=1920,1080 (over DevTools: github.com/chromedp/chromedp) %s/ui/", uiChromium, srv.URL))

	var times []time.Duration
	rt := bench.Table{Header: []string{"navigation", "browser cache", "navigation → first cards"}}
	for i := 1; i <= uiRuns; i++ {
		if err := chromedp.Do(bctx, chromedp.Navigate(srv.URL+"/ui/")); err != nil {
			return fmt.Errorf("navigate: %w", err)
		}
		ms, err := chromedp.Run(bctx, chromedp.Poll[float64](`window.__svFirstCard || 0`,
			chromedp.WithPollingTimeout(time.Minute), chromedp.WithPollingInterval(10*time.Millisecond)))
		if err != nil {
			return fmt.Errorf("waiting for the first cards: %w", err)
		}
		d := time.Duration(ms * float64(time.Millisecond))
		times = append(times, d)
		cache := "revalidated"
		if i == 1 {
			cache = "empty"
		}
		rt.Rows = append(rt.Rows, []string{strconv.Itoa(i), cache, bench.FormatDuration(d)})
		e.logf("ui: navigation %d: first cards after %s", i, d.Round(time.Millisecond))
	}
	s.Tables = append(s.Tables, rt)
	cold := times[0]
	slices.Sort(times)
	med := times[len(times)/2]
	s.Text = append(s.Text, fmt.Sprintf("The dashboard (`/ui/`) is loaded %d times in headless Chromium (1920×1080) against the server "+
		"over the %d-event store. The time runs on the page's clock from the start of navigation until the first event card "+
		"is in the document (a MutationObserver injected over DevTools records it): the page, its scripts, "+
		"`GET /events?limit=60` and the first render. The first navigation starts with an empty browser cache; the "+
		"first also starts the hourly chart's background count of the stored events.", uiRuns, info.Events))
	s.Check("navigation → first events shown, empty cache", "≤ "+bench.FormatDuration(targetUIFirstEvents),
		bench.FormatDuration(cold), cold <= targetUIFirstEvents)
	s.Check(fmt.Sprintf("navigation → first events shown, median of %d", uiRuns), "≤ "+bench.FormatDuration(targetUIFirstEvents),
		bench.FormatDuration(med), med <= targetUIFirstEvents)
	return nil
}
