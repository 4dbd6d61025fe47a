//go:build gocv

package vision

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"gocv.io/x/gocv"
)

// imageExts are file sources read as a single still frame.
var imageExts = map[string]bool{".jpg": true, ".jpeg": true, ".png": true, ".bmp": true, ".webp": true, ".tif": true, ".tiff": true}

// fileProgress is called after each analysed frame of a file.
type fileProgress func(decoded, total, analysed int)

// runFile analyses a video or image file from start to end. ts_ms of a
// frame is start + the frame's position in the file. At the end every open
// de-duplication window is flushed.
func (a *analyser) runFile(ctx context.Context, start time.Time, progress fileProgress) (Summary, error) {
	t0 := time.Now()
	path := a.src.path()
	st := Summary{Events: a.events}
	fi, err := os.Stat(path)
	if err != nil {
		a.p.m.errors.WithLabelValues(a.src.ID, errOpen).Inc()
		return st, fmt.Errorf("vision: source %s: %w", a.src.ID, err)
	}
	if fi.IsDir() {
		a.p.m.errors.WithLabelValues(a.src.ID, errOpen).Inc()
		return st, fmt.Errorf("vision: source %s: %s is a directory", a.src.ID, path)
	}
	baseMs := start.UnixMilli()

	if imageExts[strings.ToLower(filepath.Ext(path))] {
		td := time.Now()
		img := gocv.IMRead(path, gocv.IMReadColor)
		defer img.Close()
		a.p.m.observe(stageDecode, td)
		if img.Empty() {
			a.p.m.errors.WithLabelValues(a.src.ID, errRead).Inc()
			return st, fmt.Errorf("vision: source %s: %s is not an image OpenCV can decode", a.src.ID, path)
		}
		a.analyse(img, baseMs)
		st.Frames, st.Decoded = 1, 1
		if progress != nil {
			progress(1, 1, 1)
		}
		err := a.emit(ctx, a.dd.flush())
		st.Duration = time.Since(t0)
		return st, err
	}

	vc, err := gocv.VideoCaptureFile(path)
	if err != nil {
		a.p.m.errors.WithLabelValues(a.src.ID, errOpen).Inc()
		return st, fmt.Errorf("vision: source %s: cannot open %s as a video (corrupt or unsupported format)", a.src.ID, path)
	}
	defer vc.Close()
	srcFPS := vc.Get(gocv.VideoCaptureFPS)
	if math.IsNaN(srcFPS) || srcFPS <= 0 || srcFPS > 1000 {
		srcFPS = 25 // container without a usable rate: assume PAL
	}
	total := int(vc.Get(gocv.VideoCaptureFrameCount))
	interval := 1 / a.p.opts.FPS

	frame := gocv.NewMat()
	defer frame.Close()
	var appendErr error
	empties := 0
	next := 0.0 // media time of the next frame to analyse, seconds
	for idx := 0; ctx.Err() == nil; idx++ {
		pos := float64(idx) / srcFPS
		// Every frame is read (decoded and converted): gocv's Grab does
		// not report end of file, and decoding dominates anyway.
		td := time.Now()
		ok := vc.Read(&frame)
		if !ok {
			break
		}
		if pos+1e-9 < next {
			st.Decoded++
			continue
		}
		a.p.m.observe(stageDecode, td)
		st.Decoded++
		if frame.Empty() {
			a.p.m.dropped.WithLabelValues(a.src.ID, dropEmpty).Inc()
			if empties++; empties >= maxEmptyReads {
				break
			}
			continue
		}
		empties = 0
		for next <= pos {
			next += interval
		}
		ts := baseMs + int64(pos*1000)
		a.analyse(frame, ts)
		st.Frames++
		if err := a.emit(ctx, a.dd.expire(ts)); err != nil && appendErr == nil {
			appendErr = err
		}
		if progress != nil {
			progress(st.Decoded, total, st.Frames)
		}
	}
	if err := a.emit(ctx, a.dd.flush()); err != nil && appendErr == nil {
		appendErr = err
	}
	st.Duration = time.Since(t0)
	if st.Frames == 0 && ctx.Err() == nil {
		a.p.m.errors.WithLabelValues(a.src.ID, errRead).Inc()
		return st, fmt.Errorf("vision: source %s: no frame of %s could be decoded (corrupt or unsupported video)", a.src.ID, path)
	}
	return st, appendErr
}

// openLive opens a stream URL or a device.
func openLive(src Source) (*gocv.VideoCapture, error) {
	if isDeviceIndex(src.URL) {
		n, _ := strconv.Atoi(src.URL)
		return gocv.VideoCaptureDevice(n)
	}
	return gocv.VideoCaptureFile(src.URL)
}

// latestFrame is the one-slot mailbox between a live reader and the
// analyser: the reader always overwrites with the newest frame, so the
// analyser never works on a stale, buffered frame.
type latestFrame struct {
	mu struct {
		sync.Mutex
		mat    gocv.Mat
		tsMs   int64
		fresh  bool
		closed bool
	}
}

// runLive reads a stream or device until ctx is done, reconnecting with
// exponential back-off.
func (a *analyser) runLive(ctx context.Context) {
	backoff := backoffMin
	for ctx.Err() == nil {
		vc, err := openLive(a.src)
		if err != nil {
			a.p.m.errors.WithLabelValues(a.src.ID, errOpen).Inc()
			a.p.log.Warn("vision source open failed; retrying", "source", a.src.ID, "err", err, "retry_in", backoff)
		} else {
			got := a.liveSession(ctx, vc)
			if ctx.Err() != nil {
				break
			}
			a.p.m.errors.WithLabelValues(a.src.ID, errRead).Inc()
			if got {
				backoff = backoffMin
			}
			a.p.log.Warn("vision source stopped delivering frames; reconnecting", "source", a.src.ID, "retry_in", backoff)
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, backoffMax)
	}
	if err := a.emit(ctx, a.dd.flush()); err != nil {
		a.p.log.Warn("vision: final flush failed", "source", a.src.ID, "err", err)
	}
}

// liveSession runs one connection: a reader goroutine feeds latestFrame,
// this goroutine analyses the newest frame every 1/FPS. It returns when
// ctx is done or the reader gave up, reporting whether any frame arrived.
func (a *analyser) liveSession(ctx context.Context, vc *gocv.VideoCapture) (gotFrame bool) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	slot := &latestFrame{}
	slot.mu.mat = gocv.NewMat()
	readerDone := make(chan struct{})
	var got sync.Once
	gotCh := make(chan struct{})
	go func() {
		// The reader owns vc and the slot's Mat and closes both; a Read
		// blocked on a dead stream returns by itself (OpenCV's FFmpeg
		// read timeout), so shutdown never closes vc under a Read.
		defer close(readerDone)
		defer vc.Close()
		buf := gocv.NewMat()
		defer buf.Close()
		empties := 0
		for ctx.Err() == nil {
			td := time.Now()
			ok := vc.Read(&buf)
			a.p.m.observe(stageDecode, td)
			if !ok || buf.Empty() {
				if empties++; empties >= maxEmptyReads {
					break
				}
				a.p.m.dropped.WithLabelValues(a.src.ID, dropEmpty).Inc()
				continue
			}
			empties = 0
			got.Do(func() { close(gotCh) })
			ts := a.p.opts.now().UnixMilli()
			slot.mu.Lock()
			slot.mu.mat, buf = buf, slot.mu.mat
			slot.mu.tsMs, slot.mu.fresh = ts, true
			slot.mu.Unlock()
		}
		slot.mu.Lock()
		slot.mu.closed = true
		slot.mu.mat.Close()
		slot.mu.Unlock()
	}()

	work := gocv.NewMat()
	defer work.Close()
	interval := time.Duration(float64(time.Second) / a.p.opts.FPS)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			<-readerDoneOrTimeout(readerDone)
			return isClosed(gotCh)
		case <-readerDone:
			return isClosed(gotCh)
		case now := <-tick.C:
			// Ticks the analyser was too slow to take are frames due
			// for analysis that were never analysed.
			if missed := int(now.Sub(last)/interval) - 1; missed > 0 {
				a.p.m.dropped.WithLabelValues(a.src.ID, dropOverrun).Add(float64(missed))
			}
			last = now
		}
		slot.mu.Lock()
		if slot.mu.closed || !slot.mu.fresh {
			slot.mu.Unlock()
			a.emitLive(ctx, a.p.opts.now().UnixMilli())
			continue
		}
		slot.mu.mat, work = work, slot.mu.mat
		ts := slot.mu.tsMs
		slot.mu.fresh = false
		slot.mu.Unlock()
		a.analyse(work, ts)
		a.emitLive(ctx, ts)
	}
}

func (a *analyser) emitLive(ctx context.Context, nowMs int64) {
	if err := a.emit(ctx, a.dd.expire(nowMs)); err != nil {
		a.p.log.Warn("vision: append failed; events dropped", "source", a.src.ID, "err", err)
	}
}

// readerDoneOrTimeout waits for the reader at shutdown, but not forever: a
// Read blocked on a dead network stream is left to finish on its own.
func readerDoneOrTimeout(done <-chan struct{}) <-chan struct{} {
	out := make(chan struct{})
	go func() {
		defer close(out)
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
	}()
	return out
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
