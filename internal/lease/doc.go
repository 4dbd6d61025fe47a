// Package lease lets one API node at a time run the integrations (the
// MQTT publisher, the webhook deliveries) in cluster mode, and keeps their
// shared state where every node reads it: two JetStream key-value
// buckets beside the log's stream.
//
// # Buckets
//
//	<stream>_lease         History 1, MaxAge = the lease TTL
//	  "integrations"       -> the holder's node name
//	<stream>_integrations  History 1, no expiry
//	  "mqtt.cursor"        -> u64 big-endian: the MQTT publisher's cursor
//	  "wh.h.<id>"          -> a webhook's subscription (package webhook)
//	  "wh.c.<id>"          -> a webhook's cursor and replay epoch (package webhook)
//
// Both have the stream's replica count, so the state survives what the
// log survives.
//
// # The lease
//
// The lease is the key "integrations" of the lease bucket. A node takes
// it with Create (which succeeds only when the key is absent: never
// written, deleted, or expired), and keeps it by renewing it every TTL/5
// with Update at the revision it last wrote (compare-and-set: a node
// that lost the key cannot renew it). The bucket's MaxAge removes a key
// TTL after its last write, so a holder that dies (SIGKILL, a cut
// network) loses the lease TTL after its last renewal, and a waiting
// node, polling every TTL/10, takes it then.
//
// A holder stops its work when a renewal is refused, and also when it
// has not renewed successfully for TTL/2 counted from the moment it sent
// the last renewal that succeeded: the key it wrote then expires no
// earlier than TTL after that moment, so the work has stopped (the
// holder waits for it) before another node can take the lease. Work
// must therefore stop promptly when its context ends. A node that shuts
// down deletes the key (at its revision), and another takes over within
// one poll.
//
// The lease fences the work, not each delivery: a holder cut off from
// NATS may still deliver for up to TTL/2 while the next holder waits
// for the key to expire. What one holder delivered and did not yet
// record in its cursor is delivered again by the next: delivery is at
// least once, in order per integration.
package lease
