package projections

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/vocab"
)

// blockSize is the number of ids one zone-map summary covers. 1024 keeps
// the in-memory map at 10k entries for 10M events while bounding what
// retention reads at a block boundary.
const blockSize = 1024

const (
	// window is what /health's recent_events counts.
	window = vocab.RecentWindowSeconds
	// ringSize seconds of buckets; ringAhead of them hold future-stamped
	// events (clock skew between cameras and the server).
	ringSize  = 1024
	ringAhead = ringSize - window - 24
)

type zone struct {
	min, max int64
	live     uint64
	// det counts the live detections among live: a page of detections
	// skips blocks that hold none (a bulk of operators' actions).
	det uint64
}

type bucket struct {
	sec    int64
	counts [vocab.MaxTypeCode + 1]uint64 // by type code
}

// Options configure a View.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock for rolling counts and retention; nil is time.Now.
	Now func() time.Time
	// SourceKeysOnly writes source index entries without their record
	// copy (see the package doc): batch ingest writes fewer bytes and is
	// faster, and source queries read each record from the log instead. A
	// store may hold both kinds of entries; this only affects new ones.
	SourceKeysOnly bool
}

// View is the set of projections over one log.
type View struct {
	log      eventlog.Store
	logger   *slog.Logger
	now      func() time.Time
	m        *viewMetrics
	keysOnly bool
	ids      *identities
	watch    *watchState
	gallery  *galleryState
	plates   plateSearch

	mu struct {
		sync.RWMutex
		// zones[i] summarises block base+i.
		base  uint64
		zones []zone
		ring  [ringSize]bucket
	}
	lastCleanup atomic.Pointer[CleanupStats]
	// The batch being built and Finish's buffers (writer goroutine only).
	pending   []pendingEntry
	finishBuf struct {
		key      []byte
		zones    []zone
		srcGroup map[string]int
		names    []string
		counts   []int32
		order    []int32
	}
}

// New creates a View. A View is correct only as the Indexer of the log it
// is attached to (Attach), with every committed batch passed to Committed
// before it reaches anyone else. Package internal/core (core.Open) wires
// it so for the server, the tools, the benchmarks and the tests alike;
// nothing else does.
func New(opts Options) *View {
	v := &View{logger: opts.Logger, now: opts.Now, keysOnly: opts.SourceKeysOnly, ids: newIdentities(), watch: newWatchState(), gallery: newGalleryState()}
	v.finishBuf.srcGroup = map[string]int{}
	if v.logger == nil {
		v.logger = slog.New(slog.DiscardHandler)
	}
	if v.now == nil {
		v.now = time.Now
	}
	v.m = newViewMetrics(opts.Registerer, v)
	return v
}

// Attach loads the zone map and the rolling counts from the store. The
// log must be open with v as its Indexer and no batch committed since.
func (v *View) Attach(l eventlog.Store) error {
	v.log = l
	start := time.Now()
	corrections, err := v.loadCorrections(l)
	if err != nil {
		return err
	}
	backfilled, err := v.backfillHistory(l)
	if err != nil {
		return err
	}
	if backfilled > 0 {
		v.logger.Info("history entries written for the detections of an older store", "entries", backfilled, "took", time.Since(start).String())
	}
	watchChanges, err := v.loadWatch(l)
	if err != nil {
		return err
	}
	galleryChanges, err := v.loadGallery(l)
	if err != nil {
		return err
	}
	it, err := l.NewIter([]byte{eventlog.FamSummary}, []byte{eventlog.FamSummary + 1})
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.mu.zones = v.mu.zones[:0]
	first := true
	for ok := it.First(); ok; ok = it.Next() {
		b := binary.BigEndian.Uint64(it.Key()[1:])
		z, err := decodeZone(it.Value())
		if err != nil {
			it.Close()
			return fmt.Errorf("projections: block %d summary: %w", b, err)
		}
		if first {
			v.mu.base, first = b, false
		}
		for v.mu.base+uint64(len(v.mu.zones)) < b {
			v.mu.zones = append(v.mu.zones, zone{})
		}
		v.mu.zones = append(v.mu.zones, z)
	}
	if err := it.Close(); err != nil {
		return err
	}
	if first {
		v.mu.base = l.State().First / blockSize
	}
	// Rolling counts: the time index from now-window on.
	nowSec := v.now().Unix()
	lo := timeKey((nowSec-window)*1000, 0)
	it, err = l.NewIter(lo, []byte{eventlog.FamIndex, 't' + 1})
	if err != nil {
		return err
	}
	n := 0
	last := l.LastID()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		ts := int64(binary.BigEndian.Uint64(k[2:10]))
		if id := binary.BigEndian.Uint64(k[10:18]); id > last || len(it.Value()) != 1 {
			continue
		}
		v.countLocked(ts, it.Value()[0], nowSec)
		n++
	}
	if err := it.Close(); err != nil {
		return err
	}
	v.logger.Info("projections loaded", "blocks", len(v.mu.zones), "recent_events", n, "corrections", corrections, "watchlist_changes", watchChanges, "gallery_changes", galleryChanges, "took", time.Since(start).String())
	return nil
}

func timeKey(ts int64, id uint64) []byte { return appendTimeKey(make([]byte, 0, 18), ts, id) }

func appendTimeKey(k []byte, ts int64, id uint64) []byte {
	k = append(k, eventlog.FamIndex, 't')
	k = binary.BigEndian.AppendUint64(k, uint64(ts))
	return binary.BigEndian.AppendUint64(k, id)
}

func typeKey(t uint8, id uint64) []byte { return appendTypeKey(make([]byte, 0, 11), t, id) }

func appendTypeKey(k []byte, t uint8, id uint64) []byte {
	k = append(k, eventlog.FamIndex, 'y', t)
	return binary.BigEndian.AppendUint64(k, id)
}

func sourceKey(src string, id uint64) []byte {
	return appendSourceKey(make([]byte, 0, 3+len(src)+8), src, id)
}

func appendSourceKey(k []byte, src string, id uint64) []byte {
	k = append(k, eventlog.FamIndex, 's')
	k = append(k, src...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, id)
}

func zoneKey(b uint64) []byte {
	k := make([]byte, 9)
	k[0] = eventlog.FamSummary
	binary.BigEndian.PutUint64(k[1:], b)
	return k
}

func encodeZone(z zone) []byte {
	v := make([]byte, 32)
	binary.BigEndian.PutUint64(v[0:], uint64(z.min))
	binary.BigEndian.PutUint64(v[8:], uint64(z.max))
	binary.BigEndian.PutUint64(v[16:], z.live)
	binary.BigEndian.PutUint64(v[24:], z.det)
	return v
}

func decodeZone(v []byte) (zone, error) {
	if len(v) != 24 && len(v) != 32 {
		return zone{}, eventlog.ErrCorrupt
	}
	z := zone{
		min:  int64(binary.BigEndian.Uint64(v[0:])),
		max:  int64(binary.BigEndian.Uint64(v[8:])),
		live: binary.BigEndian.Uint64(v[16:]),
	}
	// A 24-byte summary was written before operators' actions were
	// events: every record it counts is a detection.
	z.det = z.live
	if len(v) == 32 {
		z.det = binary.BigEndian.Uint64(v[24:])
	}
	return z, nil
}

// typeValues are the time index values, shared: Batch.Set copies.
var typeValues = [256][]byte{}

func init() {
	for i := range typeValues {
		typeValues[i] = []byte{byte(i)}
	}
}

// Index implements eventlog.Indexer. It runs on the writer goroutine and
// only collects the entry: Finish updates the block summaries and writes
// the index keys, sorted. Pebble inserts a batch into its memtable skiplist
// in batch order and reuses the previous insert's position, so keys in
// order cost a few comparisons each, while keys interleaved across four
// families (log, type, time, source) each cost a full skiplist search,
// which took a large share of the server's CPU under batch ingest when they
// were interleaved.
func (v *View) Index(w eventlog.Writer, e *eventlog.Entry) error {
	if err := v.indexIdentity(w, e); err != nil {
		return err
	}
	pe := pendingEntry{id: e.ID, ts: e.TsMs, src: e.Source, typ: e.Type, val: e.Value}
	if v.keysOnly {
		pe.val = nil
	}
	v.pending = append(v.pending, pe)
	return nil
}

// pendingEntry is what Index keeps of an entry for Finish.
type pendingEntry struct {
	id  uint64
	ts  int64
	src string
	typ uint8
	val []byte
}

// Finish implements eventlog.Indexer: it updates the batch's block
// summaries under one lock, then writes the index keys in key order,
// family by family ('s' < 't' < 'y'), then the touched summaries. Index
// saw the entries in id order, so the source and type families only need
// their entries grouped by source or type, keeping that order
// (groupStable); the time family is sorted by (ts_ms, id), which is nearly
// the arrival order. Comparing fields orders the entries exactly as their
// encoded keys (see the key layout).
func (v *View) Finish(w eventlog.Writer) error {
	p := v.pending
	fb := &v.finishBuf
	// clear drops the references to the batch's records (val, src), which
	// would otherwise outlive it in the slots a smaller batch leaves.
	defer func() { clear(p); v.pending = p[:0] }()
	if len(p) == 0 {
		return nil
	}
	k := fb.key[:0]
	defer func() { fb.key = k }()
	// Block summaries. A batch's ids are contiguous and in order, so it
	// touches the blocks from its first id's to its last id's.
	first := p[0].id / blockSize
	fb.zones = fb.zones[:0]
	v.mu.Lock()
	for i := range p {
		z := v.zoneLocked(p[i].id / blockSize)
		if z.live == 0 {
			z.min, z.max = p[i].ts, p[i].ts
		} else {
			z.min, z.max = min(z.min, p[i].ts), max(z.max, p[i].ts)
		}
		z.live++
		if vocab.IsDetection(p[i].typ) {
			z.det++
		}
	}
	for b := first; b <= p[len(p)-1].id/blockSize; b++ {
		fb.zones = append(fb.zones, *v.zoneLocked(b))
	}
	v.mu.Unlock()
	// History ('I' 'h', 'I' 'n') sorts before source ('I' 's').
	if err := v.finishIdentities(w); err != nil {
		return err
	}
	// Source: number the distinct sources in name order, then place each
	// entry after the earlier entries of its source.
	clear(fb.srcGroup)
	fb.names = fb.names[:0]
	for i := range p {
		if _, ok := fb.srcGroup[p[i].src]; !ok {
			fb.srcGroup[p[i].src] = 0
			fb.names = append(fb.names, p[i].src)
		}
	}
	slices.Sort(fb.names)
	for g, name := range fb.names {
		fb.srcGroup[name] = g
	}
	fb.order = slices.Grow(fb.order[:0], len(p))[:len(p)]
	fb.counts = groupStable(fb.order, fb.counts, len(fb.names), func(i int) int { return fb.srcGroup[p[i].src] })
	for _, i := range fb.order {
		k = appendSourceKey(k[:0], p[i].src, p[i].id)
		if err := w.Set(k, p[i].val); err != nil {
			return err
		}
	}
	// Time: by ts_ms (positive, so unsigned order is numeric order), then
	// id. The order array is sorted, not the entries, which stay in id
	// order for the type family.
	for i := range fb.order {
		fb.order[i] = int32(i)
	}
	if !slices.IsSortedFunc(p, func(a, b pendingEntry) int { return cmp.Compare(uint64(a.ts), uint64(b.ts)) }) {
		slices.SortStableFunc(fb.order, func(a, b int32) int {
			return cmp.Compare(uint64(p[a].ts), uint64(p[b].ts))
		})
	}
	for _, i := range fb.order {
		k = appendTimeKey(k[:0], p[i].ts, p[i].id)
		if err := w.Set(k, typeValues[p[i].typ]); err != nil {
			return err
		}
	}
	// Type: grouped by the type byte, ids in order within a type.
	fb.counts = groupStable(fb.order, fb.counts, 256, func(i int) int { return int(p[i].typ) })
	for _, i := range fb.order {
		k = appendTypeKey(k[:0], p[i].typ, p[i].id)
		if err := w.Set(k, nil); err != nil {
			return err
		}
	}
	for i, z := range fb.zones {
		if err := w.Set(zoneKey(first+uint64(i)), encodeZone(z)); err != nil {
			return err
		}
	}
	return nil
}

// groupStable fills order with the indexes 0..len(order)-1 grouped by
// group(i) (0 <= group(i) < groups, groups in increasing order), keeping
// index order within a group: a counting sort. counts is reused scratch;
// the grown slice is returned.
func groupStable(order, counts []int32, groups int, group func(i int) int) []int32 {
	counts = slices.Grow(counts[:0], groups+1)[:groups+1]
	clear(counts)
	for i := range order {
		counts[group(i)+1]++
	}
	for g := 1; g < len(counts); g++ {
		counts[g] += counts[g-1]
	}
	for i := range order {
		g := group(i)
		order[counts[g]] = int32(i)
		counts[g]++
	}
	return counts
}

// zoneLocked returns the summary of block b, growing the map as needed. It
// must be called with mu held; growing only happens on the writer, under
// the exclusive lock.
func (v *View) zoneLocked(b uint64) *zone {
	if len(v.mu.zones) == 0 && b > v.mu.base {
		v.mu.base = b
	}
	if b < v.mu.base {
		// A block below the map's base: retention dropped it. Grow down
		// (only verify-style repairs reach this).
		n := v.mu.base - b
		v.mu.zones = append(make([]zone, n), v.mu.zones...)
		v.mu.base = b
	}
	for uint64(len(v.mu.zones)) <= b-v.mu.base {
		v.mu.zones = append(v.mu.zones, zone{})
	}
	return &v.mu.zones[b-v.mu.base]
}

// Committed feeds the rolling counts with a durable batch. Package core
// calls it on the log's commit goroutine for every batch, before the
// batch reaches any subscriber, so that a subscriber (the WebSocket hub)
// never announces an event that /health does not count yet.
func (v *View) Committed(b eventlog.Batch) {
	v.committedIdentities(b)
	v.committedGallery(b)
	v.notePlates(b)
	nowSec := v.now().Unix()
	v.mu.Lock()
	for i := range b.Entries {
		v.countLocked(b.Entries[i].TsMs, b.Entries[i].Type, nowSec)
	}
	v.mu.Unlock()
}

func (v *View) countLocked(ts int64, typ uint8, nowSec int64) {
	sec := floorDiv(ts, 1000)
	if sec <= nowSec-window || sec >= nowSec+ringAhead || int(typ) >= len(bucket{}.counts) {
		return
	}
	bk := &v.mu.ring[mod(sec, ringSize)]
	if bk.sec != sec {
		*bk = bucket{sec: sec}
	}
	bk.counts[typ]++
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

func mod(a, b int64) int64 { return ((a % b) + b) % b }

// Recent is the /health count of events whose ts_ms lies in the last
// vocab.RecentWindowSeconds seconds.
type Recent struct {
	Face, Plate uint64
}

// Total is Face + Plate.
func (r Recent) Total() uint64 { return r.Face + r.Plate }

// Recent answers from memory.
func (v *View) Recent() Recent {
	nowSec := v.now().Unix()
	var r Recent
	v.mu.RLock()
	defer v.mu.RUnlock()
	for s := nowSec - window + 1; s <= nowSec; s++ {
		bk := &v.mu.ring[mod(s, ringSize)]
		if bk.sec == s {
			r.Face += bk.counts[vocab.FaceMatchCode]
			r.Plate += bk.counts[vocab.PlateReadCode]
		}
	}
	return r
}

// Live is the number of retained events (sum of block live counts).
func (v *View) Live() uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	var n uint64
	for _, z := range v.mu.zones {
		n += z.live
	}
	return n
}

// ErrNoLog is returned before Attach.
var ErrNoLog = errors.New("projections: not attached to a log")

// Cleanup deletes every event with ts_ms < cutoffMs (see doc.go) and
// returns how many it deleted.
func (v *View) Cleanup(ctx context.Context, cutoffMs int64) (int, error) {
	return v.cleanup(ctx, cutoffMs, nil)
}

// CleanupIDs is Cleanup that also returns the low-water id after it and
// the ids of the late (back-filled) records it deleted beyond the trimmed
// prefix: cluster mode deletes the same from its stream.
func (v *View) CleanupIDs(ctx context.Context, cutoffMs int64) (deleted int, low uint64, late []uint64, err error) {
	deleted, err = v.cleanup(ctx, cutoffMs, &late)
	if err != nil {
		return 0, 0, nil, err
	}
	return deleted, v.log.State().First, late, nil
}

func (v *View) cleanup(ctx context.Context, cutoffMs int64, late *[]uint64) (int, error) {
	if v.log == nil {
		return 0, ErrNoLog
	}
	var st CleanupStats
	err := v.log.Update(ctx, func(tx *eventlog.Tx) error {
		n, err := v.cleanupTx(tx, cutoffMs, late)
		st = CleanupStats{Deleted: n, RangeDeletes: tx.RangeDeletes, PointDeletes: tx.PointDeletes}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("projections: cleanup: %w", err)
	}
	if st.Deleted > 0 {
		v.stalePlates()
	}
	v.m.retentionDeleted.Add(float64(st.Deleted))
	v.m.retentionRangeDeletes.Add(float64(st.RangeDeletes))
	v.m.retentionPointDeletes.Add(float64(st.PointDeletes))
	v.lastCleanup.Store(&st)
	return st.Deleted, nil
}

// CleanupStats describes the last cleanup's deletions.
type CleanupStats struct {
	Deleted                    int
	RangeDeletes, PointDeletes int
}

// LastCleanup returns the last successful cleanup's stats.
func (v *View) LastCleanup() CleanupStats {
	if p := v.lastCleanup.Load(); p != nil {
		return *p
	}
	return CleanupStats{}
}
