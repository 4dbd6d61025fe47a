package bench

import (
	"math/bits"
	"time"
)

// histSubBits sets the histogram's resolution: 2^histSubBits buckets per
// power of two, a relative error below 1/2^histSubBits (about 3%), as
// HdrHistogram with two significant digits.
const histSubBits = 5

const (
	histSub     = 1 << histSubBits
	histBuckets = (64 - histSubBits + 1) * histSub
)

// Histogram records durations in log-linear buckets (HDR-style). The zero
// value is ready; it is not safe for concurrent use: give each worker one
// and Merge them.
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	max    time.Duration
}

func histIndex(v uint64) int {
	if v < histSub {
		return int(v)
	}
	exp := bits.Len64(v) - 1 // >= histSubBits
	mant := v >> uint(exp-histSubBits)
	return (exp-histSubBits+1)<<histSubBits + int(mant-histSub)
}

// histUpper is the largest value of bucket i.
func histUpper(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	exp := i>>histSubBits + histSubBits - 1
	mant := uint64(i&(histSub-1)) + histSub
	return (mant+1)<<uint(exp-histSubBits) - 1
}

// Record adds one duration.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[histIndex(uint64(d))]++
	h.n++
	h.max = max(h.max, d)
}

// Merge adds o's records.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Count is the number of records.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest record.
func (h *Histogram) Max() time.Duration { return h.max }

// Quantile returns the q-quantile (0 < q <= 1): the upper bound of the
// bucket holding it, capped at Max.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(histUpper(i)), h.max)
		}
	}
	return h.max
}
