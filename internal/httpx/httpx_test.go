package httpx_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/securevision/events/internal/httpx"
	"github.com/securevision/events/internal/vocab"
)

func TestQuery(t *testing.T) {
	long := strings.Repeat("é", vocab.MaxSourceLen)
	for _, c := range []struct {
		raw       string
		after     int64
		hasAfter  bool
		typ       uint8
		source    string
		hasSource bool
		errs      string // "name:type ..." in order
	}{
		{raw: ""},
		{raw: "after=7&type=" + vocab.PlateRead + "&source=cam", after: 7, hasAfter: true, typ: vocab.PlateReadCode, source: "cam", hasSource: true},
		// The last of repeated values counts, as in FastAPI.
		{raw: "after=x&after=3&type=nope&type=" + vocab.FaceMatch + "&source=&source=b", after: 3, hasAfter: true, typ: vocab.FaceMatchCode, source: "b", hasSource: true},
		{raw: "source=" + url.QueryEscape(long), source: long, hasSource: true},
		{raw: "after=-1&type=Face_Match&source=" + strings.Repeat("x", vocab.MaxSourceLen+1), source: strings.Repeat("x", vocab.MaxSourceLen+1), hasSource: true,
			errs: "after:greater_than_equal type:enum source:string_too_long"},
		{raw: "after=1.5&source=", hasSource: true, errs: "after:int_parsing source:string_too_long"},
		{raw: "source=%FF", source: "\xff", hasSource: true, errs: "source:string_too_long"},
	} {
		v, err := url.ParseQuery(c.raw)
		if err != nil {
			t.Fatal(err)
		}
		q := httpx.Query{Values: v}
		after, hasAfter := q.Int("after", 0)
		typ := q.Type()
		source, hasSource := q.Source()
		var errs []string
		for _, e := range q.Errs {
			if len(e.Loc) != 2 || e.Loc[0] != "query" || e.Msg == "" {
				t.Errorf("%s: error %+v", c.raw, e)
			}
			errs = append(errs, fmt.Sprintf("%v:%s", e.Loc[1], e.Type))
		}
		if after != c.after || hasAfter != c.hasAfter || typ != c.typ || source != c.source || hasSource != c.hasSource ||
			strings.Join(errs, " ") != c.errs {
			t.Errorf("%s: after %d %v, type %d, source %q %v, errors %v", c.raw, after, hasAfter, typ, source, hasSource, errs)
		}
	}
}

func TestQueryMessages(t *testing.T) {
	q := httpx.Query{Values: url.Values{"type": {"x"}, "source": {""}, "n": {"0"}}}
	q.Type()
	q.Source()
	q.Int("n", 1)
	want := []string{vocab.QueryTypeEnumMsg, "source should have 1 to " + strconv.Itoa(vocab.MaxSourceLen) + " characters",
		"Input should be greater than or equal to 1"}
	if len(q.Errs) != len(want) {
		t.Fatalf("errors %+v", q.Errs)
	}
	for i, e := range q.Errs {
		if e.Msg != want[i] {
			t.Errorf("message %q, want %q", e.Msg, want[i])
		}
	}
}

func TestWrite(t *testing.T) {
	for _, c := range []struct {
		write  func(http.ResponseWriter)
		status int
		body   string
	}{
		{func(w http.ResponseWriter) { httpx.WriteDetail(w, 404, "Not Found") }, 404, `{"detail":"Not Found"}`},
		{func(w http.ResponseWriter) {
			httpx.WriteValidation(w, []vocab.FieldError{vocab.QueryError("after", "int_parsing", "bad")})
		}, 422, `{"detail":[{"loc":["query","after"],"msg":"bad","type":"int_parsing"}]}`},
		{func(w http.ResponseWriter) { httpx.WriteJSON(w, 200, map[string]int{"count": 1}) }, 200, `{"count":1}`},
		{func(w http.ResponseWriter) { httpx.WriteJSON(w, 200, func() {}) }, 500, `{"detail":"Internal Server Error"}`},
		{func(w http.ResponseWriter) { httpx.WriteRaw(w, 200, []byte(`[]`)) }, 200, `[]`},
	} {
		rec := httptest.NewRecorder()
		c.write(rec)
		if rec.Code != c.status || rec.Body.String() != c.body || rec.Header().Get("Content-Type") != "application/json" ||
			rec.Header().Get("Content-Length") != strconv.Itoa(len(c.body)) {
			t.Errorf("%d %s %v, want %d %s", rec.Code, rec.Body, rec.Header(), c.status, c.body)
		}
	}
}
