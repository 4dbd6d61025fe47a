// Package ingest is the one append path: POST /ingest and the camera
// pipeline (ingest/vision) both hand their events to a Service, which
// validates them (Decode for request bodies, Validate for events built in
// code), encodes each as the log stores it and appends the batch, all or
// nothing, returning once it is durable.
//
// Of the log of record it needs only the append: Options.Log is an
// Appender, declared here and implemented by *eventlog.Log (package core
// passes it), so that a test or a wrapper can stand in for the log.
//
// The vocabulary it validates against (the event type names and their
// codes, the watchlist verdicts, the field and request limits, the 422
// field error) is internal/vocab's, shared with the rest of the service.
// ingest writes; it does not depend on the read side (projections), which
// a layering test (internal/layering_test.go) keeps so.
package ingest
