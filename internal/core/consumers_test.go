package core_test

import (
	"testing"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/httpd"
	"github.com/securevision/events/ingest"
	"github.com/securevision/events/projections"
	"github.com/securevision/events/wsfanout"
)

// The consumers declare what they need of the core as small interfaces of
// their own (httpd, wsfanout and ingest Options); the core's parts must
// satisfy them. The server's wiring would fail to build otherwise, but
// this says it where the parts are made, for every part, and also checks
// that each interface asking the log for something asks only for what
// the log of record's contract (eventlog.RecordLog) promises, so that
// another backend would serve them too. It lives in a test so that the
// core itself does not import the HTTP and WebSocket layers.
var (
	_ httpd.LogReader    = (*eventlog.Log)(nil)
	_ httpd.Events       = (*projections.View)(nil)
	_ httpd.Ingester     = (*ingest.Service)(nil)
	_ wsfanout.LogReader = (*eventlog.Log)(nil)
	_ ingest.Appender    = (*eventlog.Log)(nil)

	_ httpd.LogReader    = eventlog.RecordLog(nil)
	_ wsfanout.LogReader = eventlog.RecordLog(nil)
	_ ingest.Appender    = eventlog.RecordLog(nil)
)

// TestConsumersRefuseNilParts: a nil part in an interface option (a
// read-only core's View and Ingest are nil pointers) is refused when the
// consumer is built, as it was when the options were pointers, rather than
// failing on the first request.
func TestConsumersRefuseNilParts(t *testing.T) {
	var (
		l    *eventlog.Log
		view *projections.View
		ing  *ingest.Service
	)
	if _, err := httpd.New(httpd.Options{Log: l, View: view, Ingest: ing}); err == nil {
		t.Error("httpd.New took nil parts")
	}
	if _, err := wsfanout.New(wsfanout.Options{Log: l}); err == nil {
		t.Error("wsfanout.New took a nil log")
	}
	if _, err := ingest.New(ingest.Options{Log: l}); err == nil {
		t.Error("ingest.New took a nil log")
	}
}
