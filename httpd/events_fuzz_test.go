package httpd

import (
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/securevision/events/internal/vocab"
)

// FuzzParseEventsQuery feeds arbitrary query strings to ParseEventsQuery.
// It must never panic; an accepted query is within its documented bounds,
// and the next link built from it parses back to the same filters, limit
// and page order with the cursor moved (following `next` never changes
// what is being listed). Seeds: below and testdata/fuzz/FuzzParseEventsQuery.
func FuzzParseEventsQuery(f *testing.F) {
	for _, s := range []string{
		"", "type=face_match&since=1704067200000&limit=20", "source=camera_driveway&limit=1000",
		"after=1000&limit=1000", "before=5&order=asc", "after=1&before=2", "limit=0", "limit=1001",
		"limit=-1", "since=-9223372036854775808&until=9223372036854775807", "order=sideways",
		"type=plate_read&type=face_match", "source=%ff%fe", "after=18446744073709551615",
		"source=" + string(make([]byte, 200)), "token=secret&after=3&order=desc", "a=%zz;b",
	} {
		f.Add(s, uint64(42))
	}
	f.Fuzz(func(t *testing.T, raw string, cursor uint64) {
		v, _ := url.ParseQuery(raw)
		eq, errs := ParseEventsQuery(v)
		if len(errs) > 0 {
			for _, e := range errs {
				if len(e.Loc) != 2 || e.Loc[0] != "query" || e.Msg == "" || e.Type == "" {
					t.Fatalf("malformed error %+v", e)
				}
			}
			return
		}
		q := eq.Q
		if q.Limit < 1 || q.Limit > vocab.MaxQueryLimit {
			t.Fatalf("limit %d accepted", q.Limit)
		}
		if q.After > 0 && q.Before > 0 {
			t.Fatalf("after and before both set: %+v", q)
		}
		if cursor == 0 {
			return
		}
		r := httptest.NewRequest("GET", "http://h/events?"+v.Encode(), nil)
		next, err := url.Parse(nextLink(r, eq, cursor))
		if err != nil {
			t.Fatalf("next link does not parse: %v", err)
		}
		for k := range next.Query() {
			if tokenKey(k) {
				t.Fatalf("next link carries a token: %s", next)
			}
		}
		eq2, errs := ParseEventsQuery(next.Query())
		if len(errs) > 0 {
			t.Fatalf("next link %s refused: %+v", next, errs)
		}
		q2 := eq2.Q
		if q2.Type != q.Type || q2.HasSince != q.HasSince || q2.Since != q.Since || q2.HasUntil != q.HasUntil ||
			q2.Until != q.Until || q2.Source != q.Source || q2.Limit != q.Limit || q2.Asc != q.Asc || eq2.Asc != eq.Asc {
			t.Fatalf("next link changed the query:\n %+v\n %+v\n %s", eq, eq2, next)
		}
		if q.Asc && q2.After != cursor || !q.Asc && q2.Before != cursor {
			t.Fatalf("next link cursor: %+v from %d", q2, cursor)
		}
	})
}
