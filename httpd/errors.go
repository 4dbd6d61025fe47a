package httpd

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/securevision/events/internal/vocab"
)

// writeJSON answers status with v marshalled.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"detail":"Internal Server Error"}`)
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

type detail struct {
	Detail string `json:"detail"`
}

// writeDetail answers FastAPI's {"detail": "..."} shape.
func writeDetail(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, detail{msg})
}

type validationBody struct {
	Detail []vocab.FieldError `json:"detail"`
}

// writeValidation answers FastAPI's 422 shape.
func writeValidation(w http.ResponseWriter, errs []vocab.FieldError) {
	writeJSON(w, http.StatusUnprocessableEntity, validationBody{errs})
}

var queryError = vocab.QueryError
