package httpd

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/httpx"
	"github.com/securevision/events/internal/idempotency"
	"github.com/securevision/events/internal/vocab"
)

func (s *Server) root(w http.ResponseWriter, _ *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, struct {
		Service     string `json:"service"`
		Version     string `json:"version"`
		WSEnabled   bool   `json:"ws_enabled"`
		AuthEnabled bool   `json:"auth_enabled"`
	}{vocab.ServiceName, vocab.Version, s.opts.WSEnabled, len(s.token) > 0})
}

// health answers the original service's body (its fields, in its order;
// docs/api.md, GET /health) from memory: no store scan. It is
// written by hand because it is the most polled endpoint.
func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	rc := s.opts.View.Recent()
	st := s.opts.Log.State()
	clients := 0
	if s.opts.StreamClients != nil {
		clients = s.opts.StreamClients()
	}
	storeErr := s.opts.Log.Health()
	b := make([]byte, 0, 384)
	b = append(b, `{"ok":`...)
	b = strconv.AppendBool(b, storeErr == nil)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, s.now().UnixMilli(), 10)
	b = append(b, `,"service":"`+vocab.ServiceName+`","version":"`+vocab.Version+`","ws_clients":`...)
	b = strconv.AppendInt(b, int64(clients), 10)
	b = append(b, `,"recent_events":{"total":`...)
	b = strconv.AppendUint(b, rc.Total(), 10)
	b = append(b, `,"face_matches":`...)
	b = strconv.AppendUint(b, rc.Face, 10)
	b = append(b, `,"plate_reads":`...)
	b = strconv.AppendUint(b, rc.Plate, 10)
	b = append(b, `},"event_rate":{"events_per_second":`...)
	b = strconv.AppendFloat(b, float64(rc.Total())/vocab.RecentWindowSeconds, 'f', -1, 64)
	// The original service prints the window as a float (300.0); clients
	// may show it.
	b = append(b, `,"sample_duration_seconds":`...)
	b = strconv.AppendInt(b, vocab.RecentWindowSeconds, 10)
	b = append(b, `.0},"log":{"first_id":`...)
	b = strconv.AppendUint(b, st.First, 10)
	b = append(b, `,"last_id":`...)
	b = strconv.AppendUint(b, st.Last, 10)
	b = append(b, '}')
	for _, sec := range s.opts.Health {
		v, err := json.Marshal(sec.Value())
		if err != nil {
			s.logger.Error("health section", "name", sec.Name, "err", err)
			v = []byte("null")
		}
		b = append(b, ',', '"')
		b = append(b, sec.Name...)
		b = append(b, '"', ':')
		b = append(b, v...)
	}
	status := http.StatusOK
	if storeErr != nil {
		status = http.StatusServiceUnavailable
		b = append(b, `,"error":`...)
		// JSON's string escaping, not Go's (strconv.AppendQuote writes
		// \x.. and \a, which are not JSON).
		msg, _ := json.Marshal(storeErr.Error())
		b = append(b, msg...)
	}
	b = append(b, '}')
	httpx.WriteRaw(w, status, b)
}

// ndjsonTypes make POST /ingest decode its body as NDJSON; any other
// accepted type (see jsonBodyType) is JSON.
var ndjsonTypes = []string{"application/x-ndjson", "application/ndjson", "application/jsonl"}

func (s *Server) ingest(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > vocab.MaxBodyBytes {
		s.opts.Ingest.CountRejected("too_large")
		httpx.WriteDetail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("Request body too large: the limit is %d bytes", vocab.MaxBodyBytes))
		return
	}
	ndjson := false
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		ndjson = err == nil && slices.Contains(ndjsonTypes, mt)
	}
	ctx, body, keyed, ok := idempotencyKey(w, r, ndjson)
	if !ok {
		s.opts.Ingest.CountRejected("invalid")
		return
	}
	evs, err := ingest.Decode(body, ndjson)
	if err == nil && keyed.Replayed != nil {
		err = keyed.finish(ctx, body)
		ctx = keyed.ctx
	}
	if err == nil {
		var res ingest.Result
		res, err = s.opts.Ingest.AppendValidated(ctx, evs)
		if err == nil {
			if keyed.Replayed != nil && *keyed.Replayed {
				w.Header().Set("Idempotent-Replayed", "true")
			}
			httpx.WriteJSON(w, http.StatusOK, res)
			return
		}
	}
	var verr *ingest.ValidationError
	var big *ingest.TooLargeError
	var detailed interface{ HTTPDetail() string }
	switch {
	case errors.Is(err, idempotency.ErrKeyReused):
		s.opts.Ingest.CountRejected("invalid")
		httpx.WriteValidation(w, []vocab.FieldError{{Loc: []any{"header", "Idempotency-Key"}, Msg: "Idempotency-Key was already used within " + idempotency.Window.String() + " for a different request body: use a new key for a new request", Type: "idempotency_key_reused"}})
	case errors.Is(err, ingest.ErrUnavailable) && errors.As(err, &detailed):
		httpx.WriteDetail(w, http.StatusServiceUnavailable, detailed.HTTPDetail())
	case errors.As(err, &verr):
		s.opts.Ingest.CountRejected("invalid")
		httpx.WriteValidation(w, verr.Errors)
	case errors.As(err, &big):
		s.opts.Ingest.CountRejected("too_large")
		httpx.WriteDetail(w, http.StatusRequestEntityTooLarge, "Request too large: "+big.Msg)
	case errors.Is(err, ingest.ErrUnavailable):
		httpx.WriteDetail(w, http.StatusServiceUnavailable, "Event store unavailable: the batch was not acknowledged (it is stored whole or not at all; a batch whose sync failed may reappear after a restart)")
	default:
		httpx.WriteDetail(w, http.StatusBadRequest, "Could not read the request body")
	}
}

func (s *Server) cleanup(w http.ResponseWriter, r *http.Request) {
	days := s.opts.RetentionDays
	deleted := 0
	if days > 0 {
		cutoff := s.now().Add(-time.Duration(days) * 24 * time.Hour).UnixMilli()
		n, err := s.opts.View.Cleanup(r.Context(), cutoff)
		if err != nil {
			s.logger.Error("cleanup failed", "err", err)
			httpx.WriteDetail(w, http.StatusServiceUnavailable, "Event store unavailable: cleanup failed")
			return
		}
		deleted = n
	}
	httpx.WriteJSON(w, http.StatusOK, struct {
		Deleted       int `json:"deleted"`
		RetentionDays int `json:"retention_days"`
	}{deleted, days})
}

// backup answers 409 while another backup runs (backups never queue) and
// a generic 503 when one fails: the error names server paths, so it goes
// to the log only.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	res, err := s.opts.Backup(r.Context())
	switch {
	case errors.Is(err, eventlog.ErrBackupRunning):
		httpx.WriteDetail(w, http.StatusConflict, "A backup is already running: try again when it has finished")
		return
	case err != nil:
		s.logger.Error("backup failed", "err", err)
		httpx.WriteDetail(w, http.StatusServiceUnavailable, "Backup failed: see the server log")
		return
	}
	httpx.WriteJSON(w, http.StatusOK, res)
}
