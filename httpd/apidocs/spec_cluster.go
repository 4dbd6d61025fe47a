package apidocs

import (
	"strconv"

	"github.com/securevision/events/internal/idempotency"
	"github.com/securevision/events/internal/vocab"
)

// The Idempotency-Key header of POST /ingest (both modes) and cluster
// mode's member of /health.
func init() {
	amendEndpoints = append(amendEndpoints, func(eps []endpoint) {
		for _, e := range eps {
			if e.method != "POST" || e.path != "/ingest" {
				continue
			}
			e.op.Parameters = append(e.op.Parameters, &parameter{
				Name: "Idempotency-Key", In: "header",
				Description: "Makes the request safe to retry (on any node in cluster mode): a repeat with the same key and the same " +
					"body within " + idempotency.Window.String() + " appends nothing and gets the first answer, with the header " +
					"Idempotent-Replayed: true; the same key with a different body is 422. 1 to 255 printable ASCII characters.",
				Schema:  &schema{Type: "string", MinLength: 1, MaxLength: idempotency.MaxKeyLen},
				Example: "9f01ccf0-8c34-4789-8688-231a2538a98b",
			})
			e.op.Description += " In cluster mode (SECUREVISION__CLUSTER__NATS_URL) a request is one atomic JetStream batch: at most " +
				strconv.Itoa(vocab.MaxClusterItems) + " items (413 above), and 503 when the stream has no leader or quorum."
		}
	})
	amendSchemas = append(amendSchemas, func(s ordered[*schema]) {
		for _, kv := range s {
			if kv.Key != "Health" {
				continue
			}
			kv.Value.Properties = append(kv.Value.Properties, prop("cluster", object("ClusterStatus",
				"Cluster mode only: this node's view of the stream.",
				[]string{"stream", "last_id", "applied_id", "lag", "connected"},
				prop("stream", str("The JetStream stream that is the log of record.")),
				prop("last_id", int64s("The stream's last sequence as this node last saw it.")),
				prop("applied_id", int64s("The stream position this node's views have applied.")),
				prop("lag", int64s("last_id - applied_id.")),
				prop("connected", boolean("Whether this node is connected to a NATS server.")),
			)))
		}
	})
}
