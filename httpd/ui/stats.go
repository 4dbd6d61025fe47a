package ui

import (
	"net/http"
	"strconv"

	"github.com/securevision/events/internal/httpx"
	"github.com/securevision/events/internal/vocab"
	"github.com/securevision/events/projections"
)

// Hourly is what GET /stats/hourly reads: *projections.Hourly.
type Hourly interface {
	Counts(typ uint8) projections.HourlyCounts
}

// HourlyStats is the body of GET /stats/hourly.
type HourlyStats struct {
	HourMs   int64         `json:"hour_ms"`
	StartMs  int64         `json:"start_ms"`
	Hours    int           `json:"hours"`
	Complete bool          `json:"complete"`
	Sources  []SourceStats `json:"sources"`
	// Other sums the sources beyond limit; null when there are none.
	Other *SourceStats `json:"other"`
}

// SourceStats is one source's counts, oldest hour first.
type SourceStats struct {
	Source string   `json:"frame_source_id,omitempty"`
	Counts []uint64 `json:"counts"`
	Total  uint64   `json:"total"`
	// Sources is how many sources Other sums.
	Sources int `json:"sources,omitempty"`
}

// HourlyHandler serves GET /stats/hourly from h: ?type= (face_match or
// plate_read; both when absent) and ?limit= (sources, 1 to
// vocab.StatsMaxSources).
func HourlyHandler(h Hourly) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := httpx.Query{Values: r.URL.Query()}
		// Only detections are counted: operator actions are not camera
		// activity.
		var typ uint8
		if s, ok := q.Get("type"); ok {
			if typ = vocab.TypeCode(s); !vocab.IsDetection(typ) {
				q.Fail("type", "enum", vocab.TypeEnumMsg)
			}
		}
		limit := vocab.StatsDefaultSources
		if n, ok := q.Int("limit", 1); ok {
			if n > vocab.StatsMaxSources {
				q.Fail("limit", "less_than_equal", "Input should be less than or equal to "+strconv.Itoa(vocab.StatsMaxSources))
			} else {
				limit = int(n)
			}
		}
		if len(q.Errs) > 0 {
			httpx.WriteValidation(w, q.Errs)
			return
		}
		c := h.Counts(typ)
		if c.Err != nil {
			httpx.WriteDetail(w, http.StatusServiceUnavailable, "Hourly statistics are unavailable: the store could not be read")
			return
		}
		out := HourlyStats{HourMs: projections.HourMs, StartMs: c.StartMs, Hours: projections.HourlyWindow,
			Complete: c.Complete, Sources: make([]SourceStats, 0, min(limit, len(c.Sources)))}
		for i, s := range c.Sources {
			if i < limit {
				out.Sources = append(out.Sources, SourceStats{Source: s.Source, Counts: s.Counts[:], Total: s.Total})
				continue
			}
			if out.Other == nil {
				out.Other = &SourceStats{Counts: make([]uint64, projections.HourlyWindow)}
			}
			for j, k := range s.Counts {
				out.Other.Counts[j] += k
			}
			out.Other.Total += s.Total
			out.Other.Sources++
		}
		httpx.WriteJSON(w, http.StatusOK, out)
	}
}
