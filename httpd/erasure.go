package httpd

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"unicode/utf8"

	"github.com/julienschmidt/httprouter"

	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/httpx"
	"github.com/securevision/events/internal/vocab"
	"github.com/securevision/events/projections"
)

// Erasure on request (GDPR Art. 17, BIPA): DELETE /people/{name} and
// DELETE /history/plates/{text}. The projections list the ids of every
// record of the person or plate; an erasure event carrying those ids
// (never the name) and a salted hash of the name is appended, and
// indexing it deletes the records in the same batch, here and, in cluster
// mode, on every node that applies the stream. Then this node's store is
// scrubbed, so that the erased bytes are in none of its files (WAL,
// tables), and in cluster mode the stream's messages are securely
// deleted. Backups taken before keep the data: the operator must delete
// or re-take them (see docs/api.md).

// Eraser is what the erasure routes ask the projections.
// *projections.View implements it.
type Eraser interface {
	// ErasureTargets lists the ids an erasure of subject ("person" or
	// "plate") name deletes, and how many are detections.
	ErasureTargets(ctx context.Context, subject, name string) (ids []uint64, detections int, err error)
}

// Scrubber rewrites the store so that deleted bytes leave its files.
// *eventlog.Log implements it.
type Scrubber interface {
	Scrub(ctx context.Context) error
}

// StreamEraser deletes the erased ids' messages from the log of record
// when it is not the local store (cluster mode: the JetStream stream,
// with secure delete). *cluster.Node implements it.
type StreamEraser interface {
	SecureDelete(ctx context.Context, ids []uint64) error
}

func (s *Server) erase(subject string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ps := httprouter.ParamsFromContext(r.Context())
		var value string
		if subject == "person" {
			value = ps.ByName("name")
			if value == "" || !utf8.ValidString(value) || utf8.RuneCountInString(value) > vocab.MaxPersonNameLen {
				httpx.WriteValidation(w, []vocab.FieldError{{Loc: []any{"path", "name"}, Type: "value_error", Msg: "Value error, not a person name"}})
				return
			}
		} else {
			value = vocab.NormalizePlate(ps.ByName("text"))
			if value == "" || utf8.RuneCountInString(ps.ByName("text")) > vocab.MaxPlateTextLen {
				httpx.WriteValidation(w, []vocab.FieldError{{Loc: []any{"path", "text"}, Type: "value_error", Msg: "Value error, not a plate text"}})
				return
			}
		}
		ctx := r.Context()
		fail := func(err error) {
			// Never the name in the log: it is what is being erased.
			s.logger.Error("erasure failed", "subject", subject, "err", err)
			httpx.WriteDetail(w, http.StatusServiceUnavailable, "Erasure failed: see the server log; the request may be repeated")
		}
		ids, dets, err := s.opts.Eraser.ErasureTargets(ctx, subject, value)
		if err != nil {
			fail(err)
			return
		}
		salt := make([]byte, 16)
		rand.Read(salt)
		h := sha256.Sum256(append(salt, value...))
		p := projections.ErasurePayload{Subject: subject, Hash: hex.EncodeToString(h[:]), Salt: hex.EncodeToString(salt), Erased: dets}
		p.Parts = max(1, (len(ids)+projections.MaxErasureIDs-1)/projections.MaxErasureIDs)
		var last uint64
		for p.Part = 1; p.Part <= p.Parts; p.Part++ {
			lo := (p.Part - 1) * projections.MaxErasureIDs
			p.IDs = ids[lo:min(lo+projections.MaxErasureIDs, len(ids))]
			payload, _ := json.Marshal(p)
			if last, err = s.opts.Ingest.AppendAction(ctx, ingest.Action{
				Type: vocab.ErasureCode, TsMs: s.now().UnixMilli(), Source: vocab.OperatorSource, Payload: payload,
			}); err != nil {
				fail(err)
				return
			}
		}
		if err := s.opts.Scrubber.Scrub(ctx); err != nil {
			fail(err)
			return
		}
		if s.opts.StreamEraser != nil {
			if err := s.opts.StreamEraser.SecureDelete(ctx, ids); err != nil {
				fail(err)
				return
			}
		}
		_, js, err := s.opts.View.Event(last)
		if err != nil {
			fail(err)
			return
		}
		httpx.WriteRaw(w, http.StatusOK, js)
	}
}
