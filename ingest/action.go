package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/vocab"
)

// Action is an operator's action to record in the log: a correction, a
// watchlist change, a gallery change or an erasure. Its stored JSON has
// the shape of every event: {"id","type","ts_ms","frame_source_id",
// "created_at","payload"}, so every reader of the log (GET /events?type=,
// /stream?type=, exports, integrations) handles it as it handles
// detections.
type Action struct {
	// Type is a code that is not a detection's.
	Type uint8
	// TsMs is the action's time; a correction carries its detection's
	// ts_ms, so that it expires with it.
	TsMs int64
	// Source is the frame_source_id: the corrected detection's camera, or
	// vocab.OperatorSource.
	Source string
	// Payload is the payload's JSON object, encoded by the caller.
	Payload json.RawMessage
	// Blob is stored beside the record (a gallery image), nil for none.
	Blob []byte
}

// AppendAction appends one action and returns its id once it is durable.
func (s *Service) AppendAction(ctx context.Context, a Action) (uint64, error) {
	if vocab.IsDetection(a.Type) || vocab.TypeName(a.Type) == "" {
		return 0, fmt.Errorf("ingest: AppendAction: type %d is not an action", a.Type)
	}
	if !json.Valid(a.Payload) || len(a.Payload) == 0 || a.Payload[0] != '{' {
		return 0, errors.New("ingest: AppendAction: payload is not a JSON object")
	}
	head := make([]byte, 0, 64+len(a.Source))
	head = append(head, `"type":"`...)
	head = append(head, vocab.TypeName(a.Type)...)
	head = append(head, `","ts_ms":`...)
	head = strconv.AppendInt(head, a.TsMs, 10)
	head = append(head, `,"frame_source_id":`...)
	head = appendString(head, a.Source)
	tail := append([]byte(`"payload":`), a.Payload...)
	first, _, err := s.opts.Log.Append(ctx, []eventlog.Record{{
		Type: a.Type, TsMs: a.TsMs, Source: a.Source, Head: head, Tail: tail, Blob: a.Blob,
	}})
	if err != nil {
		s.m.rejected.WithLabelValues("store").Inc()
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return first, nil
}
