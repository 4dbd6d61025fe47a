// Package webhook delivers the log's events to HTTP receivers, signed as
// the Standard Webhooks conventions say. Each webhook is one more reader of
// the log of record with its own durable cursor: a receiver that is down
// loses nothing, it is caught up, in id order, when it answers again.
//
// # Data
//
// A webhook is a subscription (URL, filters, description, signing secret,
// state) and a cursor: the id of the newest event it has dealt with
// (delivered, or skipped because its filters do not match). Deliveries
// start at cursor+1. Both live in the store under the integrations' key
// family 'C' (see eventlog/doc.go), prefix "Cwh/":
//
//	"Cwh/h/" id  -> JSON of the subscription (record: url, types, sources,
//	                list_match, description, secret, state, created_ms,
//	                skipped), written when it is created or changed
//	"Cwh/c/" id  -> u64 big-endian cursor
//
// id is "wh_" and 16 lowercase hex digits (8 random bytes). Both keys of a
// webhook are written together when it is created, replayed or deleted
// (one RecordLog.Update each, committed with Sync before the API answers).
// Cursor advances are written in batches: the flusher writes every cursor
// that moved, in one Update, every Options.FlushInterval and at Close. A
// crash may therefore lose up to that interval of cursor progress, and
// those events are delivered again after the restart: delivery is at
// least once, never at most once. Receivers de-duplicate on webhook-id.
//
// In cluster mode (Options.Shared) the subscriptions and cursors live in
// a JetStream key-value bucket shared by every node instead, and only the
// lease holder delivers (Manager.Deliver): see shared.go.
//
// The secret is stored because every delivery is signed with it. It is
// returned by the API only when the webhook is created and when its
// secret is rotated, and it is never logged.
//
// # Delivery
//
// Every webhook has one goroutine (hook.run). Behind the log's end it
// reads the log from its cursor through RecordLog.NewLogIter, a chunk at
// a time, evaluating the
// filters on each record's header (type code, source) and, for
// list_match, on the first "list_match" member of the stored JSON, which
// ingest writes before any extra payload field; nothing is decoded. The
// chunk's matching events are copied (the iterator is closed before any
// HTTP request, so no Pebble iterator stays open across retries) and
// posted one at a time, in id order: a 2xx moves the cursor past the
// event; anything else is retried with exponential back-off and jitter
// while later events wait. 410 Gone disables the webhook. When retention
// has deleted events the cursor had not reached, it skips to the oldest
// retained event and counts the skipped ids.
//
// The goroutine is woken by the commit bus: the Core.Subscribe callback
// links the committed batch to an in-memory chain (Manager.tail, type
// node), closes a channel that every idle goroutine waits on and puts a
// new one in its place (two allocations per committed batch, however many
// webhooks there are). It never blocks and never touches a webhook, so a
// slow or dead receiver cannot slow ingest. A webhook that has caught up
// reads the next batches from that chain instead of from the store, so
// filtering a busy log costs it no store read; it lets go of the chain
// before it delivers or when it falls behind, and then reads the store
// again, so a slow receiver never pins committed batches in memory.
// Requests go through one shared
// http.Client (keep-alive connections), and a semaphore of
// Options.MaxConcurrency slots bounds the requests in flight across all
// webhooks; a webhook waiting out a back-off holds no slot.
//
// # Outbound safety
//
// URLs are http or https only. Link-local (169.254.0.0/16, fe80::/10,
// which hold the cloud metadata endpoints), the metadata addresses
// themselves, unspecified, broadcast and multicast addresses are always
// refused; loopback only with Options.AllowLoopback. Private (RFC 1918,
// fc00::/7) addresses are allowed: receivers on the site's LAN are the
// common case. The check runs when the webhook is created (on an IP
// literal, on the names "localhost" and metadata.google.internal, and on
// what the host name resolves to then) and again on every connection,
// in the dialer's Control hook, on the address actually dialled after
// DNS resolution, because a DNS answer can change (rebinding). The client
// uses no proxy and follows no redirect (a 3xx is a failed delivery), so
// the address checked is the address the request goes to.
//
// # Locks
//
// Manager.mu guards the set of webhooks; hook.mu guards one webhook's
// mutable state (cursor, state, failures, secret). Neither is held during
// I/O. Manager.persistMu serialises every write to the store, and the
// values written are read under it, so a later write always carries the
// later value (a replay's cursor is never overwritten by an older flush).
// Lock order: persistMu, then mu, then hook.mu.
package webhook
