package httpd

import (
	"context"
	"crypto/sha256"
	"hash"
	"io"
	"net/http"

	"github.com/securevision/events/internal/httpx"
	"github.com/securevision/events/internal/idempotency"
	"github.com/securevision/events/internal/vocab"
)

// keyedRequest is a POST /ingest that carries an Idempotency-Key: its body
// is hashed while it is decoded, and the append path gets the key and the
// hash through the context (package internal/idempotency).
type keyedRequest struct {
	idempotency.Request
	h   hash.Hash
	ctx context.Context
}

// idempotencyKey checks the request's Idempotency-Key header. Without one
// it returns the request's context and body as they are and a zero
// keyedRequest (Replayed nil). A malformed key is answered 422 here
// (ok false).
func idempotencyKey(w http.ResponseWriter, r *http.Request, ndjson bool) (ctx context.Context, body io.Reader, k keyedRequest, ok bool) {
	vals := r.Header.Values("Idempotency-Key")
	if len(vals) == 0 {
		return r.Context(), r.Body, k, true
	}
	msg := ""
	if len(vals) > 1 {
		msg = "Idempotency-Key must be sent once"
	} else if err := idempotency.CheckKey(vals[0]); err != nil {
		msg = "Idempotency-Key " + err.Error()
	}
	if msg != "" {
		httpx.WriteValidation(w, []vocab.FieldError{{Loc: []any{"header", "Idempotency-Key"}, Msg: msg, Type: "value_error"}})
		return nil, nil, k, false
	}
	k.h = sha256.New()
	kind := byte('j')
	if ndjson {
		kind = 'n'
	}
	k.h.Write([]byte{kind})
	k.Key = vals[0]
	k.Replayed = new(bool)
	return r.Context(), io.TeeReader(r.Body, k.h), k, true
}

// finish hashes what the decoder left of the body (at most the body
// limit: trailing whitespace) and puts the request into the context.
func (k *keyedRequest) finish(ctx context.Context, body io.Reader) error {
	if _, err := io.CopyN(io.Discard, body, vocab.MaxBodyBytes); err != nil && err != io.EOF {
		return err
	}
	copy(k.Hash[:], k.h.Sum(nil))
	k.ctx = idempotency.WithRequest(ctx, k.Request)
	return nil
}
