// Package mqtt publishes the log's detection events to an MQTT broker,
// with Home Assistant discovery. It is a reader of the log with its own
// durable cursor, not a step of the commit path: ingest never waits for
// it, and an absent broker loses nothing.
//
// # Topics (prefix = Options.TopicPrefix, discovery = Options.DiscoveryPrefix)
//
//	<prefix>/available                 retained "online"; the connection's will sets "offline"
//	<prefix>/events                    every detection event, QoS 1, the JSON of GET /events/{id}
//	<prefix>/<camera>/<type>           retained, QoS 1: the latest event of that camera and type
//	<prefix>/<camera>/watchlist_alert  retained "ON" after a blacklisted plate, "OFF" after AlertOffDelay
//	<discovery>/<component>/securevision_<camera>/<object>/config
//	                                   retained Home Assistant discovery configs (discovery.go)
//	<discovery>/status                 subscribed: "online" republishes the configs
//
// <camera> is the frame_source_id escaped by EscapeID: ASCII letters,
// digits and '_' as they are, every other byte as '-' and two hex digits.
// The escape is injective, so two cameras never share a topic, and its
// output is both a valid topic level (no '+', '#', '/' or NUL) and a valid
// Home Assistant id ([a-zA-Z0-9_-]).
//
// Every publication is QoS 1. The retained per-camera messages are
// published once per chunk of up to chunkEvents records, for the latest
// event of each camera and type in it: a retained topic holds the latest
// event, the firehose holds them all.
//
// # Cursor and delivery
//
// The cursor is the id up to which every record needs nothing more: each
// detection event is on the firehose with the broker's PUBACK, and so is
// every retained message of its chunk. Records that are not detections
// (operator actions) are passed over. The cursor advances only on
// PUBACKs, chunk by chunk, in id order (acker). It is kept in memory and
// written to the store every FlushInterval, and by Stop, not once per
// event:
//
//	'C' "Cmqtt/cursor"          -> u64 big-endian: the cursor
//	'C' "Cmqtt/camera/" <id>    -> empty: a camera seen (raw frame_source_id),
//	                               announced again on every connection
//
// both written with RecordLog.Update (Tx.Set), read back by Start. In
// cluster mode (Options.Cursor) the cursor is kept in the integrations'
// shared bucket instead (package lease) and one publisher runs per lease
// term; Stop unregisters its metrics for the next. A store
// without a cursor starts after its newest event (the history is not
// replayed).
//
// Delivery is at least once, in id order. The loop reads the log from
// cursor+1 (RecordLog.NewLogIter up to LastID), woken by Notify, which
// the commit bus calls and which only signals a channel. Up to
// windowChunks chunks await their PUBACKs while the next is published, on
// one connection, from one goroutine, so the broker receives them in id
// order. When the connection ends, whatever is not acknowledged is
// published again from the cursor on the next connection; after a crash
// or restart, from the persisted cursor, which may be up to one
// FlushInterval behind. So a subscriber may see an event twice (and,
// after a duplicate, the events that followed it again), but the first
// occurrences come in id order and none is missing. If retention deletes
// events before they were published, the cursor moves to the oldest
// retained id and the gap is counted (securevision_mqtt_skipped_events_total).
//
// MQTT 3.1.1 (the client speaks it to every broker) has no reason code in
// PUBACK: a broker that drops a publication because an ACL forbids the
// topic still acknowledges it. Allow the client the prefix's topics.
//
// # Watchlist alerts
//
// A plate_read with list_match "blacklist" turns its camera's alert ON
// until ts_ms (not later than now) + AlertOffDelay; a timer publishes OFF
// when that time passes. An old read replayed after an outage turns
// nothing on. Alert state lives in memory: after a restart every camera
// starts OFF. The discovery config also carries off_delay, so Home
// Assistant turns the sensor off by itself if OFF never comes.
//
// # Connections
//
// One connection at a time, clean session, no automatic reconnection by
// the client: run reconnects with exponential back-off (minBackoff to
// maxBackoff) and every token of a lost connection completes, so the
// acker never waits for a PUBACK that cannot come. A connection failure
// is logged (Warn once per outage) and shown by Health; it never stops
// the server.
//
// # Goroutines and locks
//
// run (the loop: connect, session, back-off), one acker per session, and
// flusher. The cameras, their topics and alert times belong to the loop.
// cursor, persisted and connected are atomics; mu guards the last error
// and the cameras not yet persisted. Notify and Health never block.
package mqtt
