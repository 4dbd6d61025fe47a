package eventlog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
)

// Errors returned by the log.
var (
	ErrClosed = errors.New("eventlog: closed")
	ErrEmpty  = errors.New("eventlog: append of no records")
)

// maxBatchBytes bounds one group commit. A single Append is never split (it
// must stay atomic), so a batch holds at least one request; beyond that the
// writer stops adding requests once the batch passes this size, which keeps
// commit latency for the requests behind it predictable.
const maxBatchBytes = 32 << 20

// syncDepth is how many applied batches may wait for their fsync while the
// writer builds the next one. Pebble groups concurrent syncs itself; more
// depth only adds memory.
const syncDepth = 4

// reuseBatchBytes bounds the Pebble batches the syncer hands back to the
// writer for reuse (see spareBatch). Pebble's own batch pool keeps at most
// 1 MiB of a batch's buffer, less than one 1000-event request, so without
// reuse every group commit allocated its buffer afresh: under batch ingest
// those buffers were a large share of the server's allocations and kept
// the garbage collector cycling.
// The bound is far below Pebble's large-batch threshold (half a memtable),
// past which a committed batch's buffer is referenced by the memtable queue
// and must never be reused. With at most syncDepth+1 spares, reuse keeps
// at most 20 MiB.
const reuseBatchBytes = 4 << 20

// recordOverhead is the stored bytes of a record beyond its source, Head
// and Tail: header, id, created_at and punctuation.
const recordOverhead = hdrV2Len + 20 + 44 + 8

// Record is one event handed to Append. Head holds the JSON members that
// come after "id" and before "created_at", Tail those after "created_at",
// both without surrounding commas; the writer splices the assigned id and
// created_at in between.
type Record struct {
	Type   uint8
	TsMs   int64
	Source string
	Head   []byte
	Tail   []byte
	Blob   []byte
}

// Entry is a committed record as readers and subscribers see it. Value is
// the stored record (header and JSON, what SplitValue decodes) and JSON its
// canonical JSON part; neither may be modified.
type Entry struct {
	ID        uint64
	Type      uint8
	TsMs      int64
	Source    string
	CreatedMs int64
	Value     []byte
	JSON      []byte
	HasBlob   bool
}

// Batch is a committed group of entries, in id order, delivered to the
// OnCommit hook after the fsync.
type Batch struct {
	Entries []Entry
}

// Writer receives the extra keys (index entries) of a batch.
type Writer interface {
	Set(key, value []byte) error
	Delete(key []byte) error
	DeleteRange(start, end []byte) error
}

// Indexer adds the index entries of a record to the batch that appends it.
// It runs on the writer goroutine: Index once per record in id order, then
// Finish once per batch, which writes what Index collected (an Indexer may
// buffer its keys to write them sorted) and any per-batch summaries. If a
// batch fails before Finish, the log's sticky error stops all later
// batches, so an Indexer need not discard what it buffered.
type Indexer interface {
	Index(w Writer, e *Entry) error
	Finish(w Writer) error
}

// Options configure Open.
type Options struct {
	// URL is "memory://", "pebble:///abs/dir", "pebble://rel/dir" or a bare
	// directory path.
	URL string
	// FS overrides the file system (tests: vfs.NewCrashableMem); Dir is then
	// the directory within it.
	FS vfs.FS
	// Indexer writes projections in the same batch; may be nil.
	Indexer Indexer
	// OnCommit is called on the syncer goroutine, in log order, after each
	// batch is durable. It must not block.
	OnCommit func(Batch)
	// Logger receives lifecycle messages; nil discards.
	Logger *slog.Logger
	// Registerer receives the log's metrics; nil skips registration.
	Registerer prometheus.Registerer
	// Now is the clock for created_at; nil means time.Now.
	Now func() time.Time
	// ReadOnly opens the store without writing (verify).
	ReadOnly bool
	// CacheBytes sizes Pebble's block cache (uncompressed blocks shared by
	// every reader); 0 means DefaultCacheBytes. Pebble's own default of
	// 8 MiB makes index-driven queries on a large store read and
	// decompress blocks from disk on almost every seek.
	CacheBytes int64
}

// FS is the file system a store lives on (Pebble's vfs.FS), named here so
// that the packages that pass one through (internal/core) need not import
// Pebble: tests give vfs.NewCrashableMem or an errorfs wrapper.
type FS = vfs.FS

// DefaultCacheBytes is the block cache when Options.CacheBytes is 0: the
// recent part of the log and of the indexes, which most queries touch,
// stays decompressed in memory.
const DefaultCacheBytes = 256 << 20

// blockBytes is the sstable data block size (Pebble's default is 4 KiB).
// Flushes and compactions write, compress and checksum one block at a
// time, and most reads here are sequential pages of 100 to 1000 records:
// in alternating runs against 4 KiB, 32 KiB blocks measured faster on HTTP
// batch ingest (the load of BENCHMARKS.md section b) and no slower on the
// query load (section c). CockroachDB runs Pebble with 32 KiB blocks too.
// Existing tables keep their block size until compacted.
const blockBytes = 32 << 10

// ParseURL turns a store URL into (dir, memory). sqlite URLs are refused.
func ParseURL(u string) (dir string, memory bool, err error) {
	switch {
	case u == "memory://" || u == "memory:":
		return "", true, nil
	case strings.HasPrefix(u, "sqlite:"):
		return "", false, fmt.Errorf("sqlite is not supported: the store is Pebble; use a pebble:// URL such as %q", sqliteToPebble(u))
	case strings.HasPrefix(u, "pebble://"):
		dir = strings.TrimPrefix(u, "pebble://")
	case strings.Contains(u, "://"):
		return "", false, fmt.Errorf("unsupported store URL scheme in %q: use pebble:///abs/dir, pebble://rel/dir, a directory path or memory://", u)
	default:
		dir = u
	}
	if dir == "" {
		return "", false, fmt.Errorf("store URL %q names no directory", u)
	}
	return dir, false, nil
}

func sqliteToPebble(u string) string {
	p := strings.TrimPrefix(strings.TrimPrefix(u, "sqlite:"), "//")
	p = strings.TrimSuffix(strings.TrimSuffix(p, ".db"), ".sqlite")
	if p == "" || p == "/" {
		p = "data/events"
	}
	return "pebble://" + p
}

type appendReq struct {
	recs []Record
	// at, when set, holds each record's id and created_at (AppendAt);
	// through is then the stream position the request reaches.
	at      []At
	through uint64
	// hook writes more keys into the request's batch (AppendWith,
	// AppendAt); nil for a plain Append.
	hook AppendHook
	// exclusive, when set, makes this an Update request.
	exclusive func(*Tx) error
	done      chan appendResp
}

type appendResp struct {
	first, last uint64
	err         error
}

type pending struct {
	b       *pebble.Batch
	reqs    []*appendReq
	firsts  []uint64
	entries []Entry
	start   time.Time
}

// Log is the durable event log.
type Log struct {
	db     *pebble.DB
	opts   Options
	logger *slog.Logger
	now    func() time.Time
	m      *logMetrics

	reqs    chan *appendReq
	syncq   chan *pending
	spare   chan *pebble.Batch // synced batches, reset, for the writer to reuse
	quit    chan struct{}
	writerD chan struct{}
	syncerD chan struct{}

	// mu guards closed; Append holds it shared while enqueueing so that
	// Close can wait for in-flight senders before stopping the writer.
	mu struct {
		sync.RWMutex
		closed bool
	}
	closeOnce sync.Once
	closeErr  error

	sticky atomic.Pointer[error]
	low    atomic.Uint64 // low-water id: every record < low is gone
	last   atomic.Uint64 // committed (synced) watermark
	// inflight counts batches applied and not yet synced (the writer adds,
	// the syncer subtracts).
	inflight atomic.Int32
	// Writer-goroutine state.
	next      uint64
	createdMs int64
}

// Open opens (or creates) the log.
func Open(opts Options) (*Log, error) {
	dir := "events"
	fs := opts.FS
	if fs == nil {
		d, mem, err := ParseURL(opts.URL)
		if err != nil {
			return nil, err
		}
		if mem {
			fs = vfs.NewMem()
		} else {
			fs, dir = vfs.Default, d
			if !opts.ReadOnly {
				if err := checkFreeSpace(dir); err != nil {
					return nil, err
				}
			}
		}
	} else if opts.URL != "" {
		dir = opts.URL
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	popts := &pebble.Options{
		// Obsolete files are deleted and WAL files never recycled (see
		// scrub.go).
		FS:       scrubFS{fs},
		Cleaner:  pebble.ArchiveCleaner{},
		ReadOnly: opts.ReadOnly,
		Logger:   pebbleLogger{logger},
		// The log is written in id order: larger memtables mean fewer,
		// larger flushes for the append-heavy workload.
		MemTableSize: 64 << 20,
		CacheSize:    opts.CacheBytes,
	}
	if popts.CacheSize <= 0 {
		popts.CacheSize = DefaultCacheBytes
	}
	for i := range popts.Levels {
		popts.Levels[i].BlockSize = blockBytes
	}
	db, err := pebble.Open(dir, popts)
	if err != nil {
		return nil, fmt.Errorf("eventlog: open %s: %w", dir, err)
	}
	l := &Log{
		db: db, opts: opts, logger: logger, now: opts.Now,
		reqs:    make(chan *appendReq, 1024),
		syncq:   make(chan *pending, syncDepth),
		spare:   make(chan *pebble.Batch, syncDepth+1),
		quit:    make(chan struct{}),
		writerD: make(chan struct{}),
		syncerD: make(chan struct{}),
	}
	if l.now == nil {
		l.now = time.Now
	}
	if err := l.load(); err != nil {
		db.Close()
		return nil, err
	}
	l.m = newLogMetrics(opts.Registerer, l)
	if opts.ReadOnly {
		close(l.writerD)
		close(l.syncerD)
	} else {
		go l.writer()
		go l.syncer()
	}
	logger.Info("event log open", "dir", dir, "low_id", l.low.Load(), "last_id", l.last.Load())
	return l, nil
}

// load reads the metadata and the last record to restore the sequence.
func (l *Log) load() error {
	get := func(k []byte) (uint64, bool, error) {
		v, c, err := l.db.Get(k)
		if errors.Is(err, pebble.ErrNotFound) {
			return 0, false, nil
		}
		if err != nil {
			return 0, false, err
		}
		defer c.Close()
		n, err := u64(v)
		return n, true, err
	}
	ver, ok, err := get(keyVersion)
	if err != nil {
		return fmt.Errorf("eventlog: read version: %w", err)
	}
	if ok && ver != FormatVersion && ver != 1 {
		return fmt.Errorf("eventlog: store format version %d, this binary reads 1 and %d", ver, FormatVersion)
	}
	// A version 1 store is marked version 2 before anything is appended:
	// a binary that reads only version 1 then refuses the store instead of
	// finding records it cannot decode.
	if ver != FormatVersion && !l.opts.ReadOnly {
		if err := l.db.Set(keyVersion, u64Bytes(FormatVersion), pebble.Sync); err != nil {
			return fmt.Errorf("eventlog: write version: %w", err)
		}
	}
	low, _, err := get(keyLow)
	if err != nil {
		return fmt.Errorf("eventlog: read low-water id: %w", err)
	}
	next, _, err := get(keyNext)
	if err != nil {
		return fmt.Errorf("eventlog: read next id: %w", err)
	}
	if low == 0 {
		low = 1
	}
	if next == 0 {
		next = 1
	}
	// Appends do not write Mnext: the last record tells the next id, unless
	// a deletion removed the newest records, in which case that deletion
	// wrote Mnext (see doc.go).
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: LogKey(low), UpperBound: []byte{famLog + 1}})
	if err != nil {
		return err
	}
	if it.Last() {
		id, _ := idFromKey(it.Key())
		if id >= next {
			next = id + 1
		}
		_, _, _, js, err := SplitValue(it.Value())
		if err == nil {
			l.createdMs = CreatedMs(js)
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	l.next = next
	l.low.Store(low)
	l.last.Store(next - 1)
	return nil
}

// createdLayout is how the writer formats created_at (UTC, milliseconds).
const createdLayout = "2006-01-02T15:04:05.000Z"

// CreatedMs parses created_at out of a stored record's canonical JSON (the
// writer formats it as 2006-01-02T15:04:05.000Z); 0 if absent or malformed.
func CreatedMs(js []byte) int64 {
	const k = `"created_at":"`
	i := bytes.Index(js, []byte(k))
	if i < 0 || len(js) < i+len(k)+24 {
		return 0
	}
	t, err := time.Parse(createdLayout, string(js[i+len(k):i+len(k)+24]))
	if err != nil {
		return 0
	}
	return t.UnixMilli()
}

// Err returns the sticky write error, if any.
func (l *Log) Err() error {
	if p := l.sticky.Load(); p != nil {
		return *p
	}
	return nil
}

// Health reports why the log cannot take writes: the sticky write error,
// or ErrClosed; nil when healthy.
func (l *Log) Health() error {
	if err := l.Err(); err != nil {
		return err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.mu.closed {
		return ErrClosed
	}
	return nil
}

func (l *Log) fail(err error) error {
	err = fmt.Errorf("eventlog: write failed, store is read-only until restart: %w", err)
	if l.sticky.CompareAndSwap(nil, &err) {
		l.logger.Error("event log write failed", "err", err)
		return err
	}
	return *l.sticky.Load()
}

// State is the log's extent: records with ids in [First, Last] may exist
// (retention may have removed some in between); Last is the newest
// committed id, 0 when nothing was ever appended.
type State struct {
	First uint64
	Last  uint64
}

// State returns the current extent.
func (l *Log) State() State { return State{First: l.low.Load(), Last: l.last.Load()} }

// LastID is the committed watermark.
func (l *Log) LastID() uint64 { return l.last.Load() }

// Append appends recs atomically and returns their ids after the fsync.
// It keeps no reference to recs, or to the bytes they point to, once it
// returns: the caller may reuse them (ingest pools its record buffers).
func (l *Log) Append(ctx context.Context, recs []Record) (first, last uint64, err error) {
	return l.AppendWith(ctx, recs, nil)
}

// AppendHook writes more keys into the batch that appends one request's
// records, on the writer goroutine, once their ids are known: they commit
// atomically with the records (an idempotency record of the request's
// answer, a follower's applied position). first..last are the request's
// ids (last < first when it has no records). It must not block; an error
// fails the batch like a failed write (sticky).
type AppendHook func(w Writer, first, last uint64) error

// AppendWith is Append with a hook that writes more keys into the same
// batch. hook may be nil.
func (l *Log) AppendWith(ctx context.Context, recs []Record, hook AppendHook) (first, last uint64, err error) {
	if len(recs) == 0 {
		return 0, 0, ErrEmpty
	}
	if err := checkSources(recs); err != nil {
		return 0, 0, err
	}
	r := &appendReq{recs: recs, hook: hook, done: make(chan appendResp, 1)}
	if err := l.enqueue(ctx, r); err != nil {
		return 0, 0, err
	}
	// Once enqueued the outcome is decided by the writer; waiting for it
	// (milliseconds) keeps the caller's answer truthful.
	resp := <-r.done
	return resp.first, resp.last, resp.err
}

func checkSources(recs []Record) error {
	for i := range recs {
		if len(recs[i].Source) > MaxSourceBytes {
			return fmt.Errorf("%w: record %d has %d bytes", ErrSourceTooLong, i, len(recs[i].Source))
		}
	}
	return nil
}

// At is where AppendAt puts a record: its id and its created_at (Unix
// milliseconds), both decided by the log of record it is copied from.
type At struct {
	ID        uint64
	CreatedMs int64
}

// ErrOutOfOrder is returned by AppendAt for ids that do not strictly
// increase or do not lie above every id the log has assigned.
var ErrOutOfOrder = errors.New("eventlog: ids out of order")

// AppendAt appends records whose ids and created_at were decided
// elsewhere: cluster mode copies its stream into the local log, where the
// stream's sequence is the id. at[i] is recs[i]'s place; ids strictly
// increase, may leave gaps (stream positions without an event: markers,
// deleted messages) and must lie above every id the log has assigned.
// created_at is clamped to never decrease along the log, as Append's is.
// through (>= the last id, or 0) is the stream position the request
// reaches: the log assigns nothing at or below it from then on. recs may
// be empty to advance through and run hook alone. The records pass
// through the Indexer and OnCommit exactly as appended ones do, in the
// same group commits. It returns once the batch is durable.
func (l *Log) AppendAt(ctx context.Context, recs []Record, at []At, through uint64, hook AppendHook) error {
	if len(at) != len(recs) {
		return fmt.Errorf("eventlog: AppendAt with %d records and %d places", len(recs), len(at))
	}
	for i := range at {
		if at[i].ID == 0 || i > 0 && at[i].ID <= at[i-1].ID {
			return fmt.Errorf("%w: id %d at place %d", ErrOutOfOrder, at[i].ID, i)
		}
	}
	if len(at) > 0 && through < at[len(at)-1].ID {
		through = at[len(at)-1].ID
	}
	if err := checkSources(recs); err != nil {
		return err
	}
	r := &appendReq{recs: recs, at: at, through: through, hook: hook, done: make(chan appendResp, 1)}
	if r.at == nil {
		r.at = []At{} // non-nil marks the request as AppendAt
	}
	if err := l.enqueue(ctx, r); err != nil {
		return err
	}
	return (<-r.done).err
}

// Update runs fn on the writer goroutine with no append interleaving, and
// commits what it wrote with Sync.
func (l *Log) Update(ctx context.Context, fn func(*Tx) error) error {
	r := &appendReq{exclusive: fn, done: make(chan appendResp, 1)}
	if err := l.enqueue(ctx, r); err != nil {
		return err
	}
	return (<-r.done).err
}

func (l *Log) enqueue(ctx context.Context, r *appendReq) error {
	if err := l.Err(); err != nil {
		return err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.mu.closed || l.opts.ReadOnly {
		return ErrClosed
	}
	select {
	case l.reqs <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writer is the single goroutine that assigns ids and applies batches.
func (l *Log) writer() {
	defer close(l.writerD)
	defer close(l.syncq)
	var batch []*appendReq
	for {
		var r *appendReq
		select {
		case r = <-l.reqs:
		case <-l.quit:
			// Close waited for every sender: what is queued is all there
			// will be. Commit it, then stop.
			select {
			case r = <-l.reqs:
			default:
				return
			}
		}
		if r.exclusive == nil && l.inflight.Load() > 0 {
			// A batch is still waiting for its fsync, and this one cannot
			// be synced before that fsync ends: one scheduler pass lets
			// the appenders the last acknowledgements woke enqueue too,
			// so they share this batch instead of following in small
			// ones (measured faster with BenchmarkConcurrentSingleAppends,
			// the 64-appender target of BENCHMARKS.md section a).
			runtime.Gosched()
		}
		batch = append(batch[:0], r)
		size := reqSize(r)
	drain:
		for size < maxBatchBytes && r.exclusive == nil {
			select {
			case r2 := <-l.reqs:
				if r2.exclusive != nil {
					// Run the pending appends first, then the update.
					l.commit(batch)
					batch = append(batch[:0], r2)
					break drain
				}
				batch = append(batch, r2)
				size += reqSize(r2)
			default:
				break drain
			}
		}
		if batch[0].exclusive != nil {
			l.runExclusive(batch[0])
			continue
		}
		l.commit(batch)
	}
}

func reqSize(r *appendReq) int {
	n := 0
	for i := range r.recs {
		n += len(r.recs[i].Head) + len(r.recs[i].Tail) + len(r.recs[i].Blob) + 128
	}
	return n
}

// commit builds and applies one group commit and hands it to the syncer.
func (l *Log) commit(reqs []*appendReq) {
	if len(reqs) == 0 {
		return
	}
	if err := l.Err(); err != nil {
		for _, r := range reqs {
			r.done <- appendResp{err: err}
		}
		return
	}
	start := time.Now()
	created := l.now().UnixMilli()
	if created < l.createdMs {
		created = l.createdMs // created_at never decreases along the log
	}
	n, size, blobs := 0, 0, 0
	for _, r := range reqs {
		n += len(r.recs)
		for i := range r.recs {
			rec := &r.recs[i]
			size += recordOverhead + len(rec.Source) + len(rec.Head) + len(rec.Tail)
			blobs += len(rec.Blob)
		}
	}
	// The batch holds the records, their snapshots and what the Indexer
	// adds: projections' covering source index copies each record and
	// writes three index keys. Sized for that, the batch is not grown
	// (reallocated and copied) while it is built.
	batchSize := size + blobs + n*24
	if l.opts.Indexer != nil {
		batchSize += size + n*96
	}
	// One slab holds every stored value of the batch: one allocation per
	// group commit instead of one per record. Entries alias it.
	slab := make([]byte, 0, size)
	p := &pending{
		b:       l.spareBatch(batchSize),
		reqs:    make([]*appendReq, 0, len(reqs)),
		firsts:  make([]uint64, 0, len(reqs)),
		entries: make([]Entry, 0, n),
		start:   start,
	}
	var stamp [24]byte
	var key [9]byte // Batch.Set copies the key
	cstamp := time.UnixMilli(created).UTC().AppendFormat(stamp[:0], createdLayout)
	// stampMs is the time cstamp shows; maxCreated the newest created_at
	// so far. Appends all get the batch's created; AppendAt records bring
	// their own, clamped so that created_at never decreases.
	stampMs, maxCreated := created, l.createdMs
	id := l.next
	var err error
	for _, r := range reqs {
		if len(r.at) > 0 && r.at[0].ID < id {
			r.done <- appendResp{err: fmt.Errorf("%w: id %d, the log has assigned up to %d", ErrOutOfOrder, r.at[0].ID, id-1)}
			continue
		}
		first := id
		if len(r.at) > 0 {
			first = r.at[0].ID
		}
		p.reqs = append(p.reqs, r)
		p.firsts = append(p.firsts, first)
		for j := range r.recs {
			rec := &r.recs[j]
			recCreated := max(created, maxCreated)
			if r.at != nil {
				id = r.at[j].ID
				recCreated = max(r.at[j].CreatedMs, maxCreated)
			}
			maxCreated = recCreated
			if recCreated != stampMs {
				cstamp = time.UnixMilli(recCreated).UTC().AppendFormat(stamp[:0], createdLayout)
				stampMs = recCreated
			}
			start := len(slab)
			v := appendHeader(slab, rec.Type, rec.TsMs, rec.Source)
			js := len(v)
			v = append(v, `{"id":`...)
			v = strconv.AppendUint(v, id, 10)
			v = append(v, ',')
			v = append(v, rec.Head...)
			v = append(v, `,"created_at":"`...)
			v = append(v, cstamp...)
			v = append(v, `",`...)
			v = append(v, rec.Tail...)
			v = append(v, '}')
			slab = v
			v = v[start:len(v):len(v)]
			key[0] = famLog
			binary.BigEndian.PutUint64(key[1:], id)
			if err = p.b.Set(key[:], v, nil); err != nil {
				break
			}
			p.entries = append(p.entries, Entry{ID: id, Type: rec.Type, TsMs: rec.TsMs, Source: rec.Source, CreatedMs: recCreated, Value: v, JSON: v[js-start:], HasBlob: len(rec.Blob) > 0})
			e := &p.entries[len(p.entries)-1]
			if e.HasBlob {
				key[0] = famSnapshot
				if err = p.b.Set(key[:], rec.Blob, nil); err != nil {
					break
				}
			}
			if l.opts.Indexer != nil {
				if err = l.opts.Indexer.Index(batchWriter{p.b}, e); err != nil {
					break
				}
			}
			id++
		}
		if err != nil {
			break
		}
		last := id - 1
		if r.at != nil && r.through >= id {
			id = r.through + 1
		}
		if r.hook != nil {
			if err = r.hook(batchWriter{p.b}, first, last); err != nil {
				break
			}
		}
	}
	if len(p.reqs) == 0 {
		// Every request was refused above: nothing to apply.
		p.b.Close()
		return
	}
	if err == nil && l.opts.Indexer != nil {
		err = l.opts.Indexer.Finish(batchWriter{p.b})
	}
	if err == nil {
		err = l.db.ApplyNoSyncWait(p.b, pebble.Sync)
		if err != nil {
			// Not applied: the batch may be closed without SyncWait.
			p.b.Close()
			p.b = nil
		}
	}
	if err != nil {
		err = l.fail(err)
		if p.b != nil {
			p.b.Close()
		}
		for _, r := range p.reqs {
			r.done <- appendResp{err: err}
		}
		return
	}
	l.next = id
	l.createdMs = max(l.createdMs, maxCreated)
	l.inflight.Add(1)
	l.syncq <- p
}

// syncer waits for each applied batch's fsync, in order, then publishes.
func (l *Log) syncer() {
	defer close(l.syncerD)
	for p := range l.syncq {
		err := p.b.SyncWait()
		l.inflight.Add(-1)
		if err == nil {
			l.recycle(p.b)
		} else {
			p.b.Close()
		}
		if err != nil {
			err = l.fail(err)
		} else if err = l.Err(); err == nil && len(p.entries) > 0 {
			// An earlier batch failed: nothing after it is acknowledged.
			last := p.entries[len(p.entries)-1].ID
			l.last.Store(last)
			l.m.observeCommit(p, time.Since(p.start))
			if l.opts.OnCommit != nil {
				l.opts.OnCommit(Batch{Entries: p.entries})
			}
		}
		for i, r := range p.reqs {
			if err != nil {
				r.done <- appendResp{err: err}
				continue
			}
			r.done <- appendResp{first: p.firsts[i], last: p.firsts[i] + uint64(len(r.recs)) - 1}
		}
	}
}

// spareBatch returns an empty batch for a group commit of about size
// bytes: a synced one the syncer handed back if the commit fits the reuse
// bound, a new one otherwise.
func (l *Log) spareBatch(size int) *pebble.Batch {
	if size <= reuseBatchBytes {
		select {
		case b := <-l.spare:
			return b
		default:
		}
	}
	return l.db.NewBatchWithSize(size, pebble.WithMaxRetainedSizeBytes(reuseBatchBytes))
}

// recycle hands a synced batch back to the writer. Pebble documents Reset
// for reusing a committed batch: the memtable and the WAL hold copies of
// its contents, except for a large batch, which the bound excludes (Reset
// itself also drops a buffer beyond the batch's retained size). The
// syncer keeps no more spares than the writer can use.
func (l *Log) recycle(b *pebble.Batch) {
	if b.Len() > reuseBatchBytes {
		b.Close()
		return
	}
	b.Reset()
	select {
	case l.spare <- b:
	default:
		b.Close()
	}
}

// runExclusive runs an Update on the writer goroutine. Earlier batches may
// still be syncing; Pebble orders this commit after them.
func (l *Log) runExclusive(r *appendReq) {
	if err := l.Err(); err != nil {
		r.done <- appendResp{err: err}
		return
	}
	tx := &Tx{l: l, b: l.db.NewBatch()}
	err := r.exclusive(tx)
	if err == nil && !tx.b.Empty() {
		if tx.low > 0 {
			_ = tx.b.Set(keyLow, u64Bytes(tx.low), nil)
		}
		// The tx may delete the newest records, after which the last
		// record no longer tells the next id: persist it with the
		// deletions (see load).
		_ = tx.b.Set(keyNext, u64Bytes(l.next), nil)
		if aerr := l.db.Apply(tx.b, pebble.Sync); aerr != nil {
			err = l.fail(aerr)
		} else if tx.low > l.low.Load() {
			l.low.Store(tx.low)
		}
	}
	tx.b.Close()
	r.done <- appendResp{err: err}
}

// Close stops the writer after it committed what was queued, then closes
// Pebble. It is idempotent and returns the first close's errors.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.mu.closed = true
		l.mu.Unlock()
		close(l.quit)
		<-l.writerD
		<-l.syncerD
		for len(l.spare) > 0 {
			(<-l.spare).Close()
		}
		l.m.unregister()
		l.closeErr = l.db.Close()
		if l.closeErr != nil {
			l.closeErr = fmt.Errorf("eventlog: close: %w", l.closeErr)
		}
		l.logger.Info("event log closed", "last_id", l.last.Load())
	})
	return l.closeErr
}

type batchWriter struct{ b *pebble.Batch }

func (w batchWriter) Set(k, v []byte) error         { return w.b.Set(k, v, nil) }
func (w batchWriter) Delete(k []byte) error         { return w.b.Delete(k, nil) }
func (w batchWriter) DeleteRange(s, e []byte) error { return w.b.DeleteRange(s, e, nil) }

// pebbleLogger routes Pebble's messages to slog. Fatalf keeps Pebble's
// contract (it must not return) but logs first.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, "component", "pebble")
	panic(msg)
}
