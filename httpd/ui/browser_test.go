package ui_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/securevision/events/internal/testbin"
)

// chromiumPath is where Debian's chromium package installs the browser.
const chromiumPath = "/usr/bin/chromium"

// browserTimeout bounds one browser test: Chromium's start, the page's
// loads and every wait, with a wide margin for a loaded machine.
const browserTimeout = 3 * time.Minute

// waitTimeout bounds one wait for the page to show something.
const waitTimeout = 30 * time.Second

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// needBrowser skips when Chromium is missing (it comes with make deps) or
// in -short mode, and returns the securevision binary, built once.
func needBrowser(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("real-browser test skipped: %s not found (make deps installs chromium): %v", chromiumPath, err)
	}
	if testing.Short() {
		t.Skip("real-browser test skipped in -short mode")
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "securevision-ui-test-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "securevision")
		_, buildErr = testbin.Build(context.Background(), "", binPath)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// server is the real binary on a temporary store.
type server struct {
	*testbin.Server
	t     *testing.T
	token string
	dir   string
	bin   string
	env   []string
}

func startServer(t *testing.T, token string) *server {
	t.Helper()
	bin := needBrowser(t)
	s := &server{t: t, token: token, dir: filepath.Join(t.TempDir(), "db"), bin: bin}
	if token != "" {
		s.env = append(s.env, "SECUREVISION__API__AUTH_TOKEN="+token)
	}
	s.start(0)
	return s
}

func (s *server) start(port int) {
	s.t.Helper()
	srv, err := testbin.Start(s.t.Context(), testbin.Options{Binary: s.bin, StoreDir: s.dir, Port: port, Env: s.env})
	if err != nil {
		s.t.Fatal(err)
	}
	s.Server = srv
	s.t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			s.t.Errorf("stop server: %v\n%s", err, srv.Logs())
		}
	})
}

// restart stops the server and starts it again on the same port and
// store: every open stream is dropped.
func (s *server) restart() {
	s.t.Helper()
	if err := s.Stop(); err != nil {
		s.t.Fatalf("stop: %v", err)
	}
	s.start(s.Port)
}

// call sends a JSON request (with the token, if any) and decodes the
// answer into out; it fails the test on a status other than want.
func (s *server) call(method, path string, body any, want int, out any) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != want {
		s.t.Fatalf("%s %s: %d, want %d: %s", method, path, r.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// ingest appends events and returns their ids.
func (s *server) ingest(evs ...map[string]any) []int {
	s.t.Helper()
	var res struct {
		First int `json:"first_id"`
		Last  int `json:"last_id"`
	}
	s.call(http.MethodPost, "/ingest", evs, http.StatusOK, &res)
	var ids []int
	for id := res.First; id <= res.Last; id++ {
		ids = append(ids, id)
	}
	return ids
}

func jpegB64(t *testing.T, c color.RGBA) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 320, 240))
	for y := range 240 {
		for x := range 320 {
			img.Set(x, y, color.RGBA{c.R, c.G, uint8(x * 255 / 320), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

func face(name, src string, snapshot string) map[string]any {
	e := map[string]any{"type": "face_match", "ts_ms": time.Now().UnixMilli(), "frame_source_id": src,
		"payload": map[string]any{"person_name": name, "similarity": 0.91, "bbox": []int{100, 60, 220, 200}}}
	if snapshot != "" {
		e["snapshot_jpeg"] = snapshot
	}
	return e
}

func plate(text, src, list, snapshot string) map[string]any {
	p := map[string]any{"plate_text": text, "confidence": 0.87, "region": "US-CA", "bbox": []int{40, 100, 280, 160}}
	if list != "" {
		p["list_match"] = list
	}
	e := map[string]any{"type": "plate_read", "ts_ms": time.Now().UnixMilli(), "frame_source_id": src, "payload": p}
	if snapshot != "" {
		e["snapshot_jpeg"] = snapshot
	}
	return e
}

// browser is a headless Chromium tab that records every request the page
// makes and every console or log message.
type browser struct {
	ctx context.Context
	t   *testing.T
	mu  sync.Mutex
	// urls are the request URLs, WebSocket URLs included.
	urls []string
	// logs are console and browser log lines (CSP violations are logged
	// there), with the URL they concern.
	logs []string
}

func newBrowser(t *testing.T, width, height int) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	}
	ctx, cancel := context.WithTimeout(t.Context(), browserTimeout)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	b := &browser{t: t}
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf), chromedp.WithListener(b.listen))
	t.Cleanup(bcancel)
	b.ctx = bctx
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return b
}

// listen records the tab's requests and log lines (it runs on the tab's
// reader goroutine: no commands, return fast).
func (b *browser) listen(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		b.urls = append(b.urls, ev.Request.URL)
	case *network.EventWebSocketCreated:
		b.urls = append(b.urls, ev.URL)
	case *cdplog.EventEntryAdded:
		b.logs = append(b.logs, fmt.Sprintf("%s %s: %s [%s]", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
	case *runtime.EventConsoleAPICalled:
		var parts []string
		for _, a := range ev.Args {
			parts = append(parts, string(a.Value)+a.Description)
		}
		b.logs = append(b.logs, fmt.Sprintf("console %s: %s", ev.Type, strings.Join(parts, " ")))
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		desc := d.Text
		if d.Exception != nil {
			desc += " " + d.Exception.Description
		}
		b.logs = append(b.logs, fmt.Sprintf("exception: %s (%s:%d)", desc, d.URL, d.LineNumber))
	}
}

func (b *browser) run(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v\nlogs:\n%s", err, strings.Join(b.logLines(), "\n"))
	}
}

func (b *browser) logLines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.logs)
}

// waitJS polls expr until it is true.
func (b *browser) waitJS(what, expr string) {
	b.t.Helper()
	ok, err := chromedp.Run(b.ctx, chromedp.Poll[bool](expr,
		chromedp.WithPollingTimeout(waitTimeout), chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil || !ok {
		html, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.outerHTML`))
		b.t.Fatalf("waiting for %s (%s): %v\nbody: %.3000s\nlogs:\n%s", what, expr, err, html, strings.Join(b.logLines(), "\n"))
	}
}

// eval evaluates expr in the page.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v\nlogs:\n%s", expr, err, strings.Join(b.logLines(), "\n"))
	}
	return v
}

// cardIDs returns the ids of the live view's cards, in page order.
func (b *browser) cardIDs() []int {
	return eval[[]int](b, `Array.from(document.querySelectorAll('.card')).map(c => +c.dataset.id)`)
}

// checkLocal fails the test if the page requested anything but the
// server under test (or blob: and data: URLs, which never leave the
// browser: the page's own snapshot object URLs, and the icons of
// Chromium's built-in date picker), or logged a
// Content-Security-Policy violation or an uncaught exception.
func (b *browser) checkLocal(base string) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	wsBase := "ws" + strings.TrimPrefix(base, "http")
	if len(b.urls) == 0 {
		b.t.Error("no request recorded: the recorder is broken")
	}
	for _, u := range b.urls {
		if !strings.HasPrefix(u, base+"/") && !strings.HasPrefix(u, wsBase+"/") && !strings.HasPrefix(u, "blob:"+base+"/") && !strings.HasPrefix(u, "data:") {
			b.t.Errorf("the page requested %s, which is not the server under test (%s)", u, base)
		}
	}
	for _, l := range b.logs {
		if strings.Contains(l, "Content Security Policy") || strings.HasPrefix(l, "exception") {
			b.t.Errorf("page log: %s", l)
		}
	}
}

func (b *browser) screenshot(name string) string {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatal(err)
	}
	dir := os.Getenv("UI_SCREENSHOT_DIR")
	if dir == "" {
		dir = b.t.TempDir()
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", p)
	return p
}

// TestDashboard drives the page in headless Chromium against the real
// server with auth off: it loads with no request leaving the server,
// shows the stored events with their snapshots, shows an event appended
// after load without a reload, resumes after the server restarts with
// nothing missed or shown twice, draws the chart, searches and pages
// through the cursor links, and shows an event's detail with its box.
func TestDashboard(t *testing.T) {
	s := startServer(t, "")
	red, blue := jpegB64(t, color.RGBA{200, 30, 30, 255}), jpegB64(t, color.RGBA{30, 60, 200, 255})
	ids := s.ingest(
		face("Alice Liddell", "camera_front_door", blue),
		plate("7ABC123", "camera_driveway", "blacklist", red),
		plate("XYZ987", "camera_driveway", "", ""),
		face("unknown", "camera_garden", ""),
	)
	b := newBrowser(t, 1280, 900)
	b.run(chromedp.Navigate(s.URL + "/ui/"))
	b.waitJS("the stored events as cards", `document.querySelectorAll('.card').length === 4`)
	if got := b.cardIDs(); !slices.Equal(got, []int{ids[3], ids[2], ids[1], ids[0]}) {
		t.Fatalf("cards %v, want the stored ids newest first", got)
	}
	// Snapshots: the two events that have one show it, decoded; the
	// others a placeholder.
	for _, id := range ids[:2] {
		b.waitJS(fmt.Sprintf("event %d's thumbnail", id),
			fmt.Sprintf(`(() => { const i = document.querySelector('.card[data-id="%d"] .thumb img'); return !!i && i.complete && i.naturalWidth === 320 })()`, id))
	}
	for _, id := range ids[2:] {
		b.waitJS(fmt.Sprintf("event %d's placeholder", id),
			fmt.Sprintf(`(() => { const c = document.querySelector('.card[data-id="%d"]'); return !!c.querySelector('.nothumb') && c.querySelector('.nothumb').textContent !== '' && !c.querySelector('img') })()`, id))
	}
	text := eval[string](b, fmt.Sprintf(`document.querySelector('.card[data-id="%d"]').textContent`, ids[1]))
	for _, want := range []string{"7ABC123", "blacklist", "camera_driveway", "87%", "just now"} {
		if !strings.Contains(text, want) {
			t.Errorf("blacklisted plate's card lacks %q: %q", want, text)
		}
	}
	red2 := eval[bool](b, fmt.Sprintf(`getComputedStyle(document.querySelector('.card[data-id="%d"] .badge.blacklist')).backgroundColor === getComputedStyle(document.documentElement).getPropertyValue('--red').trim().replace(/^#(..)(..)(..)$/, (m, r, g, b) => 'rgb(' + [r, g, b].map(h => parseInt(h, 16)).join(', ') + ')')`, ids[1]))
	if !red2 {
		t.Error("the blacklist badge is not red")
	}

	// Live: an event appended after load appears without a reload.
	b.waitJS("the stream", `document.querySelector('.status')?.dataset.status === 'live'`)
	eval[int](b, `window.loadMarker = 1`)
	newID := s.ingest(plate("LIVE001", "camera_gate", "", ""))[0]
	b.waitJS("the live event", fmt.Sprintf(`!!document.querySelector('.card[data-id="%d"]')`, newID))
	marker := eval[int](b, `window.loadMarker`)
	if marker != 1 {
		t.Fatal("the page reloaded")
	}
	if got := b.cardIDs(); got[0] != newID || len(got) != 5 {
		t.Fatalf("after the live event: cards %v", got)
	}

	// The chart is drawn from /stats/hourly.
	b.waitJS("the chart", `!!document.querySelector('.chart .uplot canvas') && document.querySelector('.chart .u-legend').innerText.includes('camera_driveway')`)
	b.screenshot("live.png")

	// A dropped connection: the server restarts; events appended while
	// the page reconnects are all shown, once each, in order.
	s.restart()
	more := s.ingest(face("Bob", "camera_gate", ""), plate("AFTER1", "camera_gate", "", ""), plate("AFTER2", "camera_gate", "", ""))
	b.waitJS("the events appended across the restart", fmt.Sprintf(`!!document.querySelector('.card[data-id="%d"]')`, more[2]))
	b.waitJS("the stream after the restart", `document.querySelector('.status')?.dataset.status === 'live'`)
	more = append(more, s.ingest(face("Carol", "camera_gate", ""))...)
	b.waitJS("an event after the reconnect", fmt.Sprintf(`!!document.querySelector('.card[data-id="%d"]')`, more[3]))
	want := []int{more[3], more[2], more[1], more[0], newID, ids[3], ids[2], ids[1], ids[0]}
	if got := b.cardIDs(); !slices.Equal(got, want) {
		t.Fatalf("after the reconnect: cards %v, want %v (nothing missed, nothing twice)", got, want)
	}

	// Pause: the stream closes and events wait; resume shows them.
	b.run(chromedp.Click(chromedp.CSS(`button.pause`)))
	b.waitJS("the paused state", `document.querySelector('.status')?.dataset.status === 'paused'`)
	paused := s.ingest(plate("PAUSED1", "camera_gate", "", ""))[0]
	// The stream is closed: the server sees its client go.
	for deadline := time.Now().Add(waitTimeout); ; {
		var health struct {
			WSClients int `json:"ws_clients"`
		}
		s.call(http.MethodGet, "/health", nil, http.StatusOK, &health)
		if health.WSClients == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("paused, but the server still counts %d stream clients", health.WSClients)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if slices.Contains(b.cardIDs(), paused) {
		t.Fatal("an event appeared while paused")
	}
	// Resume from the keyboard.
	b.run(chromedp.KeyEvent("p"))
	b.waitJS("the event that came while paused", fmt.Sprintf(`!!document.querySelector('.card[data-id="%d"]')`, paused))

	// Search: filters in the URL, pages through the cursor links.
	b.run(chromedp.Navigate(s.URL + "/ui/#/search?type=plate_read&source=camera_gate&limit=1"))
	b.waitJS("the first page", `document.querySelectorAll('table.events tbody tr').length === 1`)
	first := eval[int](b, `+document.querySelector('table.events tbody tr').dataset.id`)
	if first != paused {
		t.Fatalf("first page shows %d, want the newest camera_gate plate %d", first, paused)
	}
	b.run(chromedp.Click(chromedp.CSS(`.pager button.next`)))
	b.waitJS("the second page", fmt.Sprintf(`location.hash.includes('before=%d') && document.querySelectorAll('table.events tbody tr').length === 1 && +document.querySelector('table.events tbody tr').dataset.id !== %d`, first, first))
	second := eval[int](b, `+document.querySelector('table.events tbody tr').dataset.id`)
	if second != more[2] {
		t.Fatalf("second page shows %d, want %d", second, more[2])
	}
	sel := eval[string](b, `document.querySelector('select[name=type]').value + '|' + document.querySelector('input[name=source]').value`)
	if sel != "plate_read|camera_gate" {
		t.Errorf("the form does not show the URL's filters: %q", sel)
	}

	// Event detail: the snapshot with its box, every field.
	b.run(chromedp.Navigate(s.URL + fmt.Sprintf("/ui/#/event/%d", ids[1])))
	b.waitJS("the detail's snapshot and box", `!!document.querySelector('.snap img') && document.querySelector('.snap img').naturalWidth === 320 && !!document.querySelector('.snap svg.bbox rect')`)
	fields := eval[string](b, `document.querySelector('table.fields').innerText`)
	for _, want := range []string{"plate_read", "camera_driveway", "7ABC123", "0.87", "US-CA", "blacklist", "[40,100,280,160]", "created_at"} {
		if !strings.Contains(fields, want) {
			t.Errorf("the detail lacks %q:\n%s", want, fields)
		}
	}
	rect := eval[[]float64](b, `(() => { const r = document.querySelector('.snap svg.bbox rect'); return ['x','y','width','height'].map(a => +r.getAttribute(a)) })()`)
	if !slices.Equal(rect, []float64{40, 100, 240, 60}) {
		t.Errorf("box drawn at %v, want the bbox [40 100 240 60] on the whole-frame snapshot", rect)
	}
	b.screenshot("event.png")

	// A wall screen in the dark theme, then a phone: the theme toggles and
	// the layout fits the width.
	b.run(chromedp.EmulateViewport(1920, 1080), chromedp.Navigate(s.URL+"/ui/"))
	b.waitJS("the cards on the wall screen", fmt.Sprintf(`!!document.querySelector('.card[data-id="%d"] .thumb img')`, ids[0]))
	b.run(chromedp.Click(chromedp.CSS(`button.theme`)))
	b.waitJS("the dark theme", `document.documentElement.dataset.theme === 'dark' && getComputedStyle(document.body).backgroundColor === 'rgb(13, 17, 23)'`)
	b.waitJS("the chart", `!!document.querySelector('.chart .uplot canvas')`)
	b.screenshot("wall-dark.png")
	b.run(chromedp.EmulateViewport(390, 844))
	b.waitJS("the phone layout", `document.documentElement.scrollWidth <= window.innerWidth && document.querySelector('.card').getBoundingClientRect().width < 390`)
	b.screenshot("phone.png")
	b.checkLocal(s.URL)
}

// TestDashboardAuth: with a token configured, only the token form is
// shown (no event data, no navigation) until the token is given; a wrong
// token is refused; the right one opens the dashboard, whose snapshots
// and stream use it; a 401 later returns to the form.
func TestDashboardAuth(t *testing.T) {
	s := startServer(t, "s3cret-token")
	id := s.ingest(plate("SECRET1", "camera_driveway", "", jpegB64(t, color.RGBA{10, 200, 10, 255})))[0]
	b := newBrowser(t, 1280, 900)
	b.run(chromedp.Navigate(s.URL + "/ui/"))
	b.waitJS("the token form", `!!document.querySelector('form.token-form input[type=password]')`)
	body := eval[string](b, `document.body.innerText`)
	n := eval[int](b, `document.querySelectorAll('.card, header.top, nav, .chart').length`)
	if n != 0 || strings.Contains(body, "SECRET1") {
		t.Fatalf("before the token: %d dashboard elements, body %q", n, body)
	}
	b.screenshot("login.png")

	b.run(chromedp.SendKeys(chromedp.CSS(`#token`), "wrong"), chromedp.Click(chromedp.CSS(`.token-form button[type=submit]`)))
	b.waitJS("the refusal", `!!document.querySelector('.token-form .error') && document.querySelector('.token-form .error').innerText.includes('not accepted')`)
	n = eval[int](b, `document.querySelectorAll('.card, header.top').length`)
	if n != 0 {
		t.Fatal("a wrong token opened the dashboard")
	}

	if v := eval[string](b, `document.querySelector('#token').value`); v != "" {
		t.Fatalf("the form kept the refused token %q", v)
	}
	b.run(chromedp.SendKeys(chromedp.CSS(`#token`), "s3cret-token"),
		chromedp.Click(chromedp.CSS(`.token-form button[type=submit]`)))
	b.waitJS("the dashboard", fmt.Sprintf(`!!document.querySelector('.card[data-id="%d"] .thumb img')`, id))
	b.waitJS("the stream", `document.querySelector('.status')?.dataset.status === 'live'`)
	live := s.ingest(face("Dora", "camera_front_door", ""))[0]
	b.waitJS("the live event", fmt.Sprintf(`!!document.querySelector('.card[data-id="%d"]')`, live))
	stored := eval[string](b, `sessionStorage.getItem('securevision.token')`)
	if stored != "s3cret-token" {
		t.Errorf("sessionStorage holds %q", stored)
	}
	// A reload keeps the session.
	b.run(chromedp.Reload())
	b.waitJS("the dashboard after a reload", fmt.Sprintf(`!!document.querySelector('.card[data-id="%d"]')`, live))

	// A token that stops working (the server restarted with another one):
	// the next call's 401 returns to the form.
	s.env = []string{"SECUREVISION__API__AUTH_TOKEN=rotated"}
	s.restart()
	b.run(chromedp.Navigate(s.URL + "/ui/#/search?type=plate_read"))
	b.waitJS("the form after a 401", `!!document.querySelector('form.token-form')`)
	n = eval[int](b, `document.querySelectorAll('.card, header.top').length`)
	if n != 0 {
		t.Fatal("dashboard elements shown after a 401")
	}
	b.checkLocal(s.URL)
}

// TestDashboardIdentities: a correction made through the event page's
// form is stored and shows in GET /events/{id}; a plate added to the
// blacklist on the watchlists page makes the next read of that plate
// show the red badge in the live view; removing it takes it off the list.
func TestDashboardIdentities(t *testing.T) {
	s := startServer(t, "")
	ids := s.ingest(face("Alice Liddell", "camera_front_door", jpegB64(t, color.RGBA{90, 90, 200, 255})),
		plate("FP0001", "camera_driveway", "", ""))
	b := newBrowser(t, 1280, 900)

	// A person correction through the form.
	b.run(chromedp.Navigate(s.URL + fmt.Sprintf("/ui/#/event/%d", ids[0])))
	b.waitJS("the correction form", `!!document.querySelector('form.correction input[name=value]')`)
	b.run(chromedp.SendKeys(chromedp.CSS(`form.correction input[name=value]`), "Alicia Liddell"),
		chromedp.SendKeys(chromedp.CSS(`form.correction input[name=note]`), "badge photo"),
		chromedp.Click(chromedp.CSS(`form.correction button[type=submit]`)))
	b.waitJS("the saved correction", `!!document.querySelector('form.correction .ok')`)
	var ev struct {
		Payload    map[string]any `json:"payload"`
		Correction map[string]any `json:"correction"`
	}
	s.call(http.MethodGet, fmt.Sprintf("/events/%d", ids[0]), nil, http.StatusOK, &ev)
	if ev.Correction["person_name"] != "Alicia Liddell" || ev.Correction["note"] != "badge photo" || ev.Payload["person_name"] != "Alice Liddell" {
		t.Fatalf("after the form: %+v", ev)
	}
	b.waitJS("the correction on the page", `document.querySelector('table.fields').innerText.includes('Alicia Liddell')`)

	// Search by the corrected name (the person's history), and a fuzzy
	// plate search (the plate index) whose hit links to the plate's page.
	b.run(chromedp.Navigate(s.URL + "/ui/#/search?person=Alicia%20Liddell"))
	b.waitJS("the person's history", fmt.Sprintf(`!!document.querySelector('table.events tr[data-id="%d"]')`, ids[0]))
	b.run(chromedp.Navigate(s.URL + "/ui/#/search?plate=FP0O01&fuzzy=1"))
	b.waitJS("the fuzzy hit", `!!document.querySelector('table.grid a[href="#/plate/FP0001"]')`)

	// A false positive.
	b.run(chromedp.Navigate(s.URL + fmt.Sprintf("/ui/#/event/%d", ids[1])))
	b.waitJS("the plate's form", `!!document.querySelector('form.correction input[value=fp]')`)
	b.run(chromedp.Click(chromedp.CSS(`form.correction input[value=fp]`)), chromedp.Click(chromedp.CSS(`form.correction button[type=submit]`)))
	b.waitJS("the saved correction", `!!document.querySelector('form.correction .ok')`)
	s.call(http.MethodGet, fmt.Sprintf("/events/%d", ids[1]), nil, http.StatusOK, &ev)
	if ev.Correction["false_positive"] != true {
		t.Fatalf("false positive not stored: %+v", ev)
	}

	// The blacklist, from the watchlists page.
	b.run(chromedp.Navigate(s.URL + "/ui/#/watchlists"))
	b.waitJS("the watchlists page", `!!document.querySelector('form.filters input[name=plate]')`)
	b.run(chromedp.SendKeys(chromedp.CSS(`form.filters input[name=plate]`), "BAD123"),
		chromedp.SendKeys(chromedp.CSS(`form.filters input[name=note]`), "stolen"),
		chromedp.Click(chromedp.CSS(`form.filters button[type=submit]`)))
	b.waitJS("the listed plate", `!!document.querySelector('table.list-blacklist tr[data-plate="BAD123"]')`)
	b.run(chromedp.Navigate(s.URL + "/ui/"))
	b.waitJS("the stream", `document.querySelector('.status')?.dataset.status === 'live'`)
	read := s.ingest(plate("BAD123", "camera_gate", "", ""))[0]
	b.waitJS("the red badge on the next read", fmt.Sprintf(`(() => { const c = document.querySelector('.card[data-id="%d"]'); return !!c && c.classList.contains('blacklist') && !!c.querySelector('.badge.blacklist') })()`, read))
	b.screenshot("blacklisted.png")

	b.run(chromedp.Navigate(s.URL + "/ui/#/watchlists"))
	b.waitJS("the listed plate", `!!document.querySelector('table.list-blacklist tr[data-plate="BAD123"] button')`)
	b.run(chromedp.Click(chromedp.CSS(`table.list-blacklist tr[data-plate="BAD123"] button`)))
	b.waitJS("the plate off the list", `!document.querySelector('table.list-blacklist tr[data-plate="BAD123"]')`)
	after := s.ingest(plate("BAD123", "camera_gate", "", ""))[0]
	var got struct {
		Payload map[string]any `json:"payload"`
	}
	s.call(http.MethodGet, fmt.Sprintf("/events/%d", after), nil, http.StatusOK, &got)
	if got.Payload["list_match"] != nil {
		t.Errorf("a read after the removal still matches: %v", got.Payload["list_match"])
	}
	b.checkLocal(s.URL)
}
