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
)

// Erasure on request (GDPR Art. 17, BIPA): DELETE /people/{name} and
// DELETE /history/plates/{text}. The projections delete every record of
// the person or plate in one exclusive update; the store is then
// scrubbed, so that the erased bytes are in none of its files (WAL,
// tables); last, an erasure event records what happened with a salted
// hash instead of the name. Backups taken before keep the data: the
// operator must delete or re-take them (see docs/api.md).

// Eraser is what the erasure routes ask the projections.
// *projections.View implements it.
type Eraser interface {
	ErasePerson(ctx context.Context, name string) (int, error)
	ErasePlate(ctx context.Context, plate string) (int, error)
}

// Scrubber rewrites the store so that deleted bytes leave its files.
// *eventlog.Log implements it.
type Scrubber interface {
	Scrub(ctx context.Context) error
}

// ErasurePayload is the payload of an erasure event.
type ErasurePayload struct {
	// Subject is "person" or "plate".
	Subject string `json:"subject"`
	// Hash is hex SHA-256 of Salt's bytes followed by the erased name or
	// normalised plate: who knows the name can check that it was erased;
	// the log alone does not tell it.
	Hash string `json:"hash"`
	Salt string `json:"salt"`
	// Erased counts the detections deleted.
	Erased int `json:"erased"`
}

func (s *Server) erase(subject string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ps := httprouter.ParamsFromContext(r.Context())
		var value string
		var n int
		var err error
		ctx := r.Context()
		if subject == "person" {
			value = ps.ByName("name")
			if value == "" || !utf8.ValidString(value) || utf8.RuneCountInString(value) > vocab.MaxPersonNameLen {
				httpx.WriteValidation(w, []vocab.FieldError{{Loc: []any{"path", "name"}, Type: "value_error", Msg: "Value error, not a person name"}})
				return
			}
			n, err = s.opts.Eraser.ErasePerson(ctx, value)
		} else {
			value = vocab.NormalizePlate(ps.ByName("text"))
			if value == "" || utf8.RuneCountInString(ps.ByName("text")) > vocab.MaxPlateTextLen {
				httpx.WriteValidation(w, []vocab.FieldError{{Loc: []any{"path", "text"}, Type: "value_error", Msg: "Value error, not a plate text"}})
				return
			}
			n, err = s.opts.Eraser.ErasePlate(ctx, value)
		}
		if err == nil {
			err = s.opts.Scrubber.Scrub(ctx)
		}
		if err != nil {
			// Never the name in the log: it is what is being erased.
			s.logger.Error("erasure failed", "subject", subject, "err", err)
			httpx.WriteDetail(w, http.StatusServiceUnavailable, "Erasure failed: see the server log; the request may be repeated")
			return
		}
		salt := make([]byte, 16)
		rand.Read(salt)
		h := sha256.Sum256(append(salt, value...))
		p := ErasurePayload{Subject: subject, Hash: hex.EncodeToString(h[:]), Salt: hex.EncodeToString(salt), Erased: n}
		payload, _ := json.Marshal(p)
		s.appendAction(w, ctx, ingest.Action{
			Type: vocab.ErasureCode, TsMs: s.now().UnixMilli(), Source: vocab.OperatorSource, Payload: payload,
		}, http.StatusOK)
	}
}
