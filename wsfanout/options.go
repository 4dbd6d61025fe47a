package wsfanout

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/nilcheck"
)

// Defaults for Options.
const (
	// DefaultMaxClients bounds open streams: each costs two goroutines and
	// a few KiB (see doc.go), and file descriptors are a process-wide limit.
	DefaultMaxClients = 10000
	// DefaultQueueLen events per client: at the design rate of 10 events/s
	// this is 25 s of live data before a client is fed from the log.
	DefaultQueueLen = 256
	// DefaultWriteTimeout bounds one socket write.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultStallTimeout bounds the time a client with pending data may go
	// without completing a write.
	DefaultStallTimeout = 30 * time.Second
	// DefaultMaxMessageBytes bounds inbound messages: clients only send
	// "ping"; anything large is a mistake or an attack.
	DefaultMaxMessageBytes = 4096
)

// LogReader is what the stream reads from the log of record: the
// committed watermark, where a client without a cursor starts; the
// low-water id, for the gap notice; and the records of an id range, to
// catch a client up. It is eventlog.RecordLog's read side, whose contract
// it keeps; *eventlog.Log implements it. Each method is called per
// client, per catch-up chunk or per gap check, never per event: the
// records are read through the concrete *eventlog.Iter.
type LogReader interface {
	// NewLogIter iterates the records with ids in [from, to], clamped to
	// the low-water id and the committed watermark.
	NewLogIter(from, to uint64) (*eventlog.Iter, error)
	// LastID is the committed watermark.
	LastID() uint64
	// State is the extent: First the low-water id, Last the watermark.
	State() eventlog.State
}

// Options configure a Hub. Zero values take the defaults above.
type Options struct {
	// Log is the event log the stream reads and replays; required.
	Log LogReader
	// Decorate, when set, writes a replayed detection's JSON as the REST
	// API reads it (with its newest correction: projections.View's
	// Decorate). Live events are sent as stored: a detection is
	// streamed when it is appended, before it can be corrected.
	Decorate func(dst []byte, id uint64, stored []byte) []byte
	// Enabled false accepts the upgrade and closes with 1008, as the
	// original service does.
	Enabled bool
	// MaxClients caps open streams; more are refused with HTTP 503 before
	// the upgrade.
	MaxClients int
	// QueueLen is the per-client bound of queued live events.
	QueueLen int
	// WriteTimeout is the deadline of one socket write.
	WriteTimeout time.Duration
	// StallTimeout disconnects a client whose socket accepted no complete
	// write for this long while data was pending.
	StallTimeout time.Duration
	// MaxMessageBytes caps inbound frames and messages (closed with 1009
	// above; see doc.go, "Hostile input").
	MaxMessageBytes int
	// SendBuffer sets SO_SNDBUF of stream sockets when > 0 (bounds kernel
	// memory per slow client; tests use it to make stalls visible).
	SendBuffer int
	// Logger receives lifecycle and disconnect messages; nil discards.
	Logger *slog.Logger
	// Registerer receives the hub's metrics; nil skips registration.
	Registerer prometheus.Registerer

	// hooks inject faults in tests; nil otherwise.
	hooks *hooks
}

// hooks let tests make a connection's goroutines fail.
type hooks struct {
	// upgraded runs on the HTTP server's goroutine after the handshake.
	upgraded func()
	// unguarded lets gws read frame headers unchecked, to test the panic
	// recovery on its own.
	unguarded bool
	// message runs on the reader goroutine with each client message.
	message func(data []byte)
	// flush runs on the writer goroutine before each socket write.
	flush func(out []byte)
}

// Validate reports invalid options (after defaults are applied).
func (o Options) Validate() error {
	var errs []error
	if nilcheck.IsNil(o.Log) {
		errs = append(errs, errors.New("wsfanout: Options.Log is required"))
	}
	if o.MaxClients < 0 || o.QueueLen < 0 || o.MaxMessageBytes < 0 || o.SendBuffer < 0 {
		errs = append(errs, fmt.Errorf("wsfanout: negative limit in options (MaxClients %d, QueueLen %d, MaxMessageBytes %d, SendBuffer %d)",
			o.MaxClients, o.QueueLen, o.MaxMessageBytes, o.SendBuffer))
	}
	if o.WriteTimeout < 0 || o.StallTimeout < 0 {
		errs = append(errs, fmt.Errorf("wsfanout: negative timeout in options (WriteTimeout %s, StallTimeout %s)", o.WriteTimeout, o.StallTimeout))
	}
	return errors.Join(errs...)
}

func (o *Options) setDefaults() {
	if o.MaxClients == 0 {
		o.MaxClients = DefaultMaxClients
	}
	if o.QueueLen == 0 {
		o.QueueLen = DefaultQueueLen
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.StallTimeout == 0 {
		o.StallTimeout = DefaultStallTimeout
	}
	if o.MaxMessageBytes == 0 {
		o.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}
