package mqtt_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/mqtt"
	"github.com/securevision/events/internal/storetest"
	"github.com/securevision/events/internal/vocab"
)

// storedJSON is record id's JSON as the log holds it (what GET
// /events/{id} serves).
func storedJSON(t *testing.T, st *storetest.Store, id uint64) []byte {
	t.Helper()
	v, err := st.Log.Get(id)
	if err != nil {
		t.Fatalf("get %d: %v", id, err)
	}
	_, _, _, js, err := eventlog.SplitValue(v)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func blacklistPlate(src string, ts int64, text string) ingest.Event {
	e := storetest.Plate(src, ts, text)
	e.Plate.ListMatch, e.Plate.ListMatchSet = vocab.Blacklist, true
	return e
}

// TestFirehoseCarriesEveryID: every detection arrives on <prefix>/events
// once, in id order, byte-identical to the stored JSON; the retained
// per-camera topics hold each camera's latest event of each type.
func TestFirehoseCarriesEveryID(t *testing.T) {
	b := startBroker(t)
	st := storetest.Open(t, storetest.Options{})
	sub := subscribe(t, b, "fh", false, "sv/#")
	p := startPublisher(t, st, mqtt.Options{URL: b.URL(), TopicPrefix: "sv", ClientID: "pub-fh"})
	now := time.Now().UnixMilli()
	const batches, per = 40, 25
	for i := 0; i < batches; i++ {
		evs := make([]ingest.Event, per)
		for j := range evs {
			src := fmt.Sprintf("cam%d", j%3)
			if j%2 == 0 {
				evs[j] = storetest.Face(src, now, fmt.Sprintf("person %d-%d", i, j))
			} else {
				evs[j] = storetest.Plate(src, now, fmt.Sprintf("P%d", i*per+j))
			}
		}
		st.Append(t, evs...)
	}
	last := st.Log.LastID()
	waitUntil(t, "every id on the firehose", func() bool { return hasAll(eventIDs(t, sub.messages(), "sv/events"), 1, last) })
	waitUntil(t, "the cursor at the last id", func() bool { return p.Health().Cursor == last })
	ms := sub.messages()
	ids := eventIDs(t, ms, "sv/events")
	if !reflect.DeepEqual(ids, idRange(1, last)) {
		t.Fatalf("firehose ids (no outage: each once, in order): %v", ids)
	}
	latest := map[string][]byte{}
	i := 0
	for _, m := range ms {
		if m.Topic == "sv/events" {
			i++
			if want := storedJSON(t, st, uint64(i)); !bytes.Equal(m.Payload, want) {
				t.Fatalf("event %d: published %s, stored %s", i, m.Payload, want)
			}
			var e struct {
				Type string `json:"type"`
				Src  string `json:"frame_source_id"`
			}
			if err := json.Unmarshal(m.Payload, &e); err != nil {
				t.Fatal(err)
			}
			latest["sv/"+e.Src+"/"+e.Type] = m.Payload
		}
	}
	// The retained topics hold the latest: a new subscriber gets them.
	late := subscribe(t, b, "late", false, "sv/+/face_match", "sv/+/plate_read")
	waitUntil(t, "retained latest events", func() bool { return len(late.messages()) == len(latest) })
	for _, m := range late.messages() {
		if !m.Retained || !bytes.Equal(m.Payload, latest[m.Topic]) {
			t.Errorf("%s: retained=%v %s, want the latest %s", m.Topic, m.Retained, m.Payload, latest[m.Topic])
		}
	}
	if h := p.Health(); !h.Connected || h.Lag != 0 {
		t.Errorf("health %+v", h)
	}
	if n := metric(t, st, "securevision_mqtt_published_events_total", "acked"); n != float64(last) {
		t.Errorf("acked counter %v, want %d", n, last)
	}
}

// metric returns the value of a counter or gauge in the store's registry,
// the one whose label value is label (any when empty).
func metric(t *testing.T, st *storetest.Store, name, label string) float64 {
	t.Helper()
	mfs, err := st.Reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, l := range m.GetLabel() {
				match = match || l.GetValue() == label
			}
			if !match {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s{%s} not found", name, label)
	return 0
}

// TestDecorate: the Decorate hook builds the published JSON.
func TestDecorate(t *testing.T) {
	b := startBroker(t)
	st := storetest.Open(t, storetest.Options{})
	sub := subscribe(t, b, "dec", false, "securevision/events")
	startPublisher(t, st, mqtt.Options{URL: b.URL(), ClientID: "pub-dec", DiscoveryPrefix: "",
		Decorate: func(dst []byte, id uint64, stored []byte) []byte {
			dst = append(dst, stored[:len(stored)-1]...)
			return fmt.Appendf(dst, `,"decorated":%d}`, id)
		}})
	st.Append(t, storetest.Face("c", time.Now().UnixMilli(), "A"), storetest.Plate("c", time.Now().UnixMilli(), "B"))
	waitUntil(t, "two events", func() bool { return len(sub.messages()) == 2 })
	for i, m := range sub.messages() {
		id := uint64(i + 1)
		js := storedJSON(t, st, id)
		want := fmt.Sprintf(`%s,"decorated":%d}`, js[:len(js)-1], id)
		if string(m.Payload) != want {
			t.Errorf("event %d: %s, want %s", id, m.Payload, want)
		}
	}
}

// TestDiscovery checks every field of the Home Assistant discovery
// configs, the availability topic, the republication on
// homeassistant/status = online, and the retained state topics the
// configs point at.
func TestDiscovery(t *testing.T) {
	b := startBroker(t)
	st := storetest.Open(t, storetest.Options{})
	sub := subscribe(t, b, "ha", false, "homeassistant/#", "securevision/available")
	startPublisher(t, st, mqtt.Options{URL: b.URL(), ClientID: "pub-ha", DiscoveryPrefix: "homeassistant", AlertOffDelay: 90 * time.Second})
	waitUntil(t, "online", func() bool {
		for _, m := range sub.messages() {
			if m.Topic == "securevision/available" && string(m.Payload) == "online" {
				return true
			}
		}
		return false
	})
	now := time.Now().UnixMilli()
	cams := []string{"camera_driveway", "Front Door/1"}
	for _, c := range cams {
		st.Append(t, storetest.Face(c, now, "John"), storetest.Plate(c, now, "ABC123"))
	}
	configs := func() map[string]map[string]any {
		out := map[string]map[string]any{}
		for _, m := range sub.messages() {
			if strings.HasSuffix(m.Topic, "/config") {
				var v map[string]any
				if err := json.Unmarshal(m.Payload, &v); err != nil {
					t.Fatalf("%s: %v", m.Topic, err)
				}
				out[m.Topic] = v
			}
		}
		return out
	}
	waitUntil(t, "six discovery configs", func() bool { return len(configs()) == 6 })
	got := configs()
	for _, c := range cams {
		esc := mqtt.EscapeID(c)
		node := "securevision_" + esc
		dev := map[string]any{
			"identifiers": []any{node}, "name": "SecureVision " + c, "manufacturer": "SecureVision",
			"model": "SecureVision Events camera", "sw_version": vocab.Version,
		}
		origin := map[string]any{"name": "SecureVision Events", "sw_version": vocab.Version}
		common := func(m map[string]any) map[string]any {
			m["availability_topic"] = "securevision/available"
			m["payload_available"] = "online"
			m["payload_not_available"] = "offline"
			m["device"], m["origin"] = dev, origin
			return m
		}
		want := map[string]map[string]any{
			"homeassistant/sensor/" + node + "/last_person/config": common(map[string]any{
				"name": "Last person", "unique_id": node + "_last_person",
				"state_topic":           "securevision/" + esc + "/face_match",
				"json_attributes_topic": "securevision/" + esc + "/face_match",
				"value_template":        "{{ value_json.payload.person_name[:255] }}",
				"icon":                  "mdi:account",
			}),
			"homeassistant/sensor/" + node + "/last_plate/config": common(map[string]any{
				"name": "Last plate", "unique_id": node + "_last_plate",
				"state_topic":           "securevision/" + esc + "/plate_read",
				"json_attributes_topic": "securevision/" + esc + "/plate_read",
				"value_template":        "{{ value_json.payload.plate_text }}",
				"icon":                  "mdi:car",
			}),
			"homeassistant/binary_sensor/" + node + "/watchlist_alert/config": common(map[string]any{
				"name": "Watchlist alert", "unique_id": node + "_watchlist_alert",
				"state_topic": "securevision/" + esc + "/watchlist_alert",
				"payload_on":  "ON", "payload_off": "OFF", "off_delay": float64(90), "device_class": "problem",
			}),
		}
		for topic, w := range want {
			g, ok := got[topic]
			if !ok {
				t.Errorf("no config on %s (got %v)", topic, keys(got))
				continue
			}
			for k := range w {
				if !reflect.DeepEqual(g[k], w[k]) {
					t.Errorf("%s: %s = %#v, want %#v", topic, k, g[k], w[k])
				}
			}
			for k := range g {
				if _, ok := w[k]; !ok {
					t.Errorf("%s: unexpected field %s = %#v", topic, k, g[k])
				}
			}
		}
	}
	// The state topics the sensors read hold the event JSON (retained).
	state := subscribe(t, b, "state", false, "securevision/"+mqtt.EscapeID(cams[1])+"/#")
	waitUntil(t, "retained state", func() bool { return len(state.messages()) == 3 })
	for _, m := range state.messages() {
		if !m.Retained {
			t.Errorf("%s not retained", m.Topic)
		}
		switch {
		case strings.HasSuffix(m.Topic, "/face_match"):
			if !bytes.Equal(m.Payload, storedJSON(t, st, 3)) {
				t.Errorf("face state %s", m.Payload)
			}
		case strings.HasSuffix(m.Topic, "/plate_read"):
			if !bytes.Equal(m.Payload, storedJSON(t, st, 4)) {
				t.Errorf("plate state %s", m.Payload)
			}
		case strings.HasSuffix(m.Topic, "/watchlist_alert"):
			if string(m.Payload) != "OFF" {
				t.Errorf("alert state %s", m.Payload)
			}
		default:
			t.Errorf("unexpected topic %s", m.Topic)
		}
	}

	// Home Assistant comes online: every config again.
	before := len(sub.messages())
	pub := subscribe(t, b, "ha-birth", false)
	if tok := pub.cli.Publish("homeassistant/status", 1, false, "online"); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	waitUntil(t, "configs republished", func() bool {
		n := 0
		for _, m := range sub.messages()[before:] {
			if strings.HasSuffix(m.Topic, "/config") {
				n++
			}
		}
		return n == 6
	})
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// TestWatchlistAlert: a blacklisted plate turns its camera's alert ON,
// and it turns OFF after the delay; a whitelisted one and an old
// blacklisted one do not.
func TestWatchlistAlert(t *testing.T) {
	b := startBroker(t)
	st := storetest.Open(t, storetest.Options{})
	sub := subscribe(t, b, "alert", false, "securevision/+/watchlist_alert")
	startPublisher(t, st, mqtt.Options{URL: b.URL(), ClientID: "pub-alert", AlertOffDelay: 300 * time.Millisecond})
	now := time.Now().UnixMilli()
	white := storetest.Plate("gate", now, "OK1")
	white.Plate.ListMatch, white.Plate.ListMatchSet = vocab.Whitelist, true
	st.Append(t, white, blacklistPlate("gate", now-time.Hour.Milliseconds(), "OLD1"))
	st.Append(t, blacklistPlate("door", now, "BAD1"))
	payloads := func(topic string) []string {
		var out []string
		for _, m := range sub.messages() {
			if m.Topic == topic {
				out = append(out, string(m.Payload))
			}
		}
		return out
	}
	waitUntil(t, "door alert ON then OFF", func() bool {
		return reflect.DeepEqual(payloads("securevision/door/watchlist_alert"), []string{"OFF", "ON", "OFF"})
	})
	if got := payloads("securevision/gate/watchlist_alert"); !reflect.DeepEqual(got, []string{"OFF"}) {
		t.Errorf("gate alert: %v", got)
	}
}

// TestBrokerOutage: the broker stops while 1000 events are appended and
// starts again on the same port: every event arrives, the first
// occurrences in id order.
func TestBrokerOutage(t *testing.T) {
	b := startBroker(t)
	st := storetest.Open(t, storetest.Options{})
	sub := subscribe(t, b, "outage-sub", true, "securevision/events")
	p := startPublisher(t, st, mqtt.Options{URL: b.URL(), ClientID: "pub-outage", DiscoveryPrefix: ""})
	now := time.Now().UnixMilli()
	const total, per = 1000, 10
	for i := 0; i < total/per; i++ {
		switch i {
		case 30:
			// Some of what was appended is on its way: wait until the
			// publisher has published part of it, then take the broker away.
			waitUntil(t, "some events acknowledged", func() bool { return p.Health().Cursor > 0 })
			b.Stop()
		case 70:
			waitUntil(t, "the publisher to notice the outage", func() bool { return !p.Health().Connected })
			b.Start()
		}
		evs := make([]ingest.Event, per)
		for j := range evs {
			evs[j] = storetest.Face(fmt.Sprintf("cam%d", j%4), now, fmt.Sprintf("n%d", i*per+j))
		}
		st.Append(t, evs...)
	}
	waitUntil(t, "every event after the outage", func() bool { return hasAll(eventIDs(t, sub.messages(), "securevision/events"), 1, total) })
	checkFirstOccurrences(t, eventIDs(t, sub.messages(), "securevision/events"), idRange(1, total))
	waitUntil(t, "the cursor at the end", func() bool { return p.Health().Cursor == total })
	if h := p.Health(); !h.Connected || h.Lag != 0 {
		t.Errorf("health %+v", h)
	}
	if n := metric(t, st, "securevision_mqtt_reconnects_total", ""); n < 1 {
		t.Errorf("reconnects %v", n)
	}
}

// TestResumeFromPersistedCursor: the server stops mid-stream (the
// publisher's Stop writes its cursor, the store closes while events are
// still being appended), more events are appended with no publisher,
// and the next start resumes from the persisted cursor: every event
// arrives, first occurrences in order.
func TestResumeFromPersistedCursor(t *testing.T) {
	b := startBroker(t)
	dir := t.TempDir()
	sub := subscribe(t, b, "resume-sub", false, "securevision/events")
	now := time.Now().UnixMilli()
	appendN := func(st *storetest.Store, n int) {
		for i := 0; i < n; i++ {
			st.Append(t, storetest.Face("cam", now, fmt.Sprintf("n%d", i)), storetest.Plate("cam", now, fmt.Sprintf("P%d", i)))
		}
	}
	o := mqtt.Options{URL: b.URL(), ClientID: "pub-resume", DiscoveryPrefix: "", FlushInterval: time.Hour}

	// First run: stop while a writer is still appending.
	st1, err := storetest.OpenErr(dir, storetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o.Log, o.Registerer = st1.Log, st1.Reg
	p1, err := mqtt.New(o)
	if err != nil {
		t.Fatal(err)
	}
	st1.Subscribe(p1.Notify)
	if err := p1.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stopWriter := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stopWriter:
				return
			default:
			}
			if _, err := st1.Ingest.Append(context.Background(), []ingest.Event{storetest.Face("cam", now, fmt.Sprintf("w%d", i))}); err != nil {
				t.Errorf("append: %v", err)
				return
			}
		}
	}()
	waitUntil(t, "200 events published", func() bool { return p1.Health().Cursor >= 200 })
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := p1.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	stopped := p1.Health().Cursor
	close(stopWriter)
	wg.Wait()
	if err := st1.Core.Close(); err != nil {
		t.Fatal(err)
	}
	first := eventIDs(t, sub.messages(), "securevision/events")

	// Between runs: more events, nobody publishing.
	st2, err := storetest.OpenErr(dir, storetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendN(st2, 100)
	if err := st2.Core.Close(); err != nil {
		t.Fatal(err)
	}

	// Second run: resumes from the persisted cursor.
	st3 := storetest.Open(t, storetest.Options{Dir: dir})
	p3 := startPublisher(t, st3, mqtt.Options{URL: b.URL(), ClientID: "pub-resume", DiscoveryPrefix: ""})
	if c := p3.Health().Cursor; c != stopped {
		t.Fatalf("resumed at cursor %d, the first run stopped at %d", c, stopped)
	}
	appendN(st3, 50)
	last := st3.Log.LastID()
	if stopped >= last || stopped < 200 {
		t.Fatalf("cursor %d, last %d: not mid-stream", stopped, last)
	}
	waitUntil(t, "every event", func() bool { return hasAll(eventIDs(t, sub.messages(), "securevision/events"), 1, last) })
	all := eventIDs(t, sub.messages(), "securevision/events")
	checkFirstOccurrences(t, all, idRange(1, last))
	// The second run published from cursor+1 on: its first message is
	// the event after the persisted cursor.
	if second := all[len(first):]; len(second) == 0 || second[0] != stopped+1 {
		t.Fatalf("second run began with %v, want %d", second[:min(3, len(second))], stopped+1)
	}
}

// TestUnreachableBroker: with no broker, the publisher starts, ingest
// goes on and Health says why; when the broker comes up on that port,
// everything appended meanwhile is published.
func TestUnreachableBroker(t *testing.T) {
	b := startBroker(t)
	b.Stop()
	st := storetest.Open(t, storetest.Options{})
	p := startPublisher(t, st, mqtt.Options{URL: b.URL(), ClientID: "pub-down", DiscoveryPrefix: ""})
	for i := 0; i < 20; i++ {
		st.Append(t, storetest.Face("cam", time.Now().UnixMilli(), "x"))
	}
	waitUntil(t, "a connection error", func() bool { return p.Health().LastError != "" })
	if h := p.Health(); h.Connected || h.Cursor != 0 || h.Lag != 20 {
		t.Fatalf("health %+v", h)
	}
	if n := metric(t, st, "securevision_mqtt_connected", ""); n != 0 {
		t.Errorf("connected gauge %v", n)
	}
	if n := metric(t, st, "securevision_mqtt_lag_events", ""); n != 20 {
		t.Errorf("lag gauge %v", n)
	}
	// The cursor moves only on PUBACKs: at 20, the broker has them all.
	b.Start()
	waitUntil(t, "catch-up", func() bool { return p.Health().Cursor == 20 && p.Health().Connected })
}

// TestRetentionOvertakesCursor: events deleted before they were
// published are skipped and counted; the rest are published.
func TestRetentionOvertakesCursor(t *testing.T) {
	b := startBroker(t)
	st := storetest.Open(t, storetest.Options{})
	for i := 0; i < 100; i++ {
		st.Append(t, storetest.Face("cam", time.Now().UnixMilli(), "x"))
	}
	// A cursor at 10, then retention deletes ids below 51.
	err := st.Log.Update(context.Background(), func(tx *eventlog.Tx) error {
		if err := tx.Set([]byte("Cmqtt/cursor"), []byte{0, 0, 0, 0, 0, 0, 0, 10}); err != nil {
			return err
		}
		return tx.TrimPrefix(51)
	})
	if err != nil {
		t.Fatal(err)
	}
	sub := subscribe(t, b, "gap-sub", false, "securevision/events")
	p := startPublisher(t, st, mqtt.Options{URL: b.URL(), ClientID: "pub-gap", DiscoveryPrefix: ""})
	if c := p.Health().Cursor; c != 10 {
		t.Fatalf("cursor read back %d, want 10", c)
	}
	waitUntil(t, "the cursor at 100", func() bool { return p.Health().Cursor == 100 })
	ids := eventIDs(t, sub.messages(), "securevision/events")
	if !reflect.DeepEqual(ids, idRange(51, 100)) {
		t.Fatalf("published %v", ids)
	}
	if n := metric(t, st, "securevision_mqtt_skipped_events_total", ""); n != 40 {
		t.Errorf("skipped %v, want 40", n)
	}
}
