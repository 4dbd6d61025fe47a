package webhook

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/securevision/events/eventlog"
)

// Key prefixes (see the package doc).
const (
	keyPrefix    = "Cwh/"
	hookPrefix   = "Cwh/h/"
	cursorPrefix = "Cwh/c/"
)

// keyEnd is the first key after every "Cwh/" key ('/'+1 == '0').
var keyEnd = []byte("Cwh0")

func hookKey(id string) []byte   { return []byte(hookPrefix + id) }
func cursorKey(id string) []byte { return []byte(cursorPrefix + id) }

// recordVersion is the version of the stored subscription JSON.
const recordVersion = 1

// record is a webhook's stored subscription. The secret is in it because
// deliveries are signed with it; record is never logged or answered.
type record struct {
	V           int      `json:"v"`
	URL         string   `json:"url"`
	Types       []string `json:"types,omitempty"`
	Sources     []string `json:"sources,omitempty"`
	ListMatch   string   `json:"list_match,omitempty"`
	PersonName  string   `json:"person_name,omitempty"`
	Description string   `json:"description,omitempty"`
	Secret      string   `json:"secret"`
	State       string   `json:"state"`
	CreatedMs   int64    `json:"created_ms"`
	// Skipped counts the ids retention deleted before this webhook
	// reached them.
	Skipped uint64 `json:"skipped,omitempty"`
	// Gen counts the enables in cluster mode: a higher one makes the
	// delivering node retry at once (shared.go).
	Gen uint64 `json:"gen,omitempty"`
}

// Webhook states.
const (
	stateActive   = "active"
	stateDisabled = "disabled"
)

// loaded is one webhook read from the store.
type loaded struct {
	id     string
	rec    record
	cursor uint64
}

// load reads every stored webhook. It runs through Update because the
// log's contract gives reads of other key families only to the
// exclusive Tx; nothing is written, so nothing is committed.
func load(l eventlog.RecordLog) (hooks []loaded, bad []string, err error) {
	err = l.Update(context.Background(), func(tx *eventlog.Tx) error {
		it, err := tx.NewIter([]byte(keyPrefix), keyEnd)
		if err != nil {
			return err
		}
		defer it.Close()
		cursors := map[string]uint64{}
		for ok := it.First(); ok; ok = it.Next() {
			k, v := string(it.Key()), it.Value()
			switch {
			case strings.HasPrefix(k, hookPrefix):
				h := loaded{id: k[len(hookPrefix):]}
				if err := json.Unmarshal(v, &h.rec); err != nil || h.rec.V != recordVersion || h.rec.URL == "" {
					bad = append(bad, h.id)
					continue
				}
				hooks = append(hooks, h)
			case strings.HasPrefix(k, cursorPrefix) && len(v) == 8:
				cursors[k[len(cursorPrefix):]] = binary.BigEndian.Uint64(v)
			}
		}
		// Both keys are written together; a webhook found without a
		// cursor starts at 0, and so delivers every retained event
		// rather than lose one.
		for i := range hooks {
			hooks[i].cursor = cursors[hooks[i].id]
		}
		return it.Error()
	})
	if err != nil {
		return nil, nil, fmt.Errorf("webhook: load: %w", err)
	}
	return hooks, bad, nil
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// writeHook writes a webhook's subscription and cursor in tx.
func writeHook(tx *eventlog.Tx, id string, rec *record, cursor uint64) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := tx.Set(hookKey(id), b); err != nil {
		return err
	}
	return tx.Set(cursorKey(id), u64(cursor))
}

// deleteHook deletes both keys of a webhook in tx.
func deleteHook(tx *eventlog.Tx, id string) error {
	if err := tx.Delete(hookKey(id)); err != nil {
		return err
	}
	return tx.Delete(cursorKey(id))
}
