package main

import (
	"fmt"
	"math/bits"
	"time"
)

// hist is a log-linear latency histogram in nanoseconds: values below
// 2·histSub are exact, above that each power of two is split into histSub
// buckets, so a bucket is never wider than 1/histSub (0.8 %) of its values.
// The receiving clients add to it without allocating, and worker processes
// send it to the coordinator sparse, so 100,000 receivers cost a few KB on
// the pipe instead of one sample each.
type hist struct {
	counts   []uint64
	n        uint64
	sum      int64 // ns; for the mean
	min, max int64
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits // buckets per power of two
	// Enough for 2^62 ns; negative values are clamped to 0.
	histBuckets = 2*histSub + (62-histSubBits)*histSub
)

func newHist() *hist { return &hist{counts: make([]uint64, histBuckets)} }

// histIndex maps v ≥ 0 to its bucket.
func histIndex(v int64) int {
	if v < 2*histSub {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - (histSubBits + 1)
	return 2*histSub + (shift-1)*histSub + int(v>>shift) - histSub
}

// histLow is the smallest value of bucket i; histLow(i+1)-1 its largest.
func histLow(i int) int64 {
	if i < 2*histSub {
		return int64(i)
	}
	j := i - 2*histSub
	shift := j/histSub + 1
	return int64(j%histSub+histSub) << shift
}

// add records one value (ns).
func (h *hist) add(v int64) {
	if v < 0 {
		v = 0
	}
	i := histIndex(v)
	if i >= len(h.counts) {
		i = len(h.counts) - 1
	}
	h.counts[i]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += v
}

// merge adds o into h.
func (h *hist) merge(o *hist) {
	if o == nil || o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// quantile is the nearest-rank p-th percentile (as percentile in stats.go),
// reported as the middle of its bucket and clamped to [min, max].
func (h *hist) quantile(p float64) int64 {
	if h.n == 0 {
		return 0
	}
	if p <= 0 {
		return h.min
	}
	rank := uint64(p/100*float64(h.n) + 0.9999999)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			mid := (histLow(i) + histLow(i+1) - 1) / 2
			return min(max(mid, h.min), h.max)
		}
	}
	return h.max
}

// summary converts to the report's latency summary.
func (h *hist) summary() summary {
	if h.n == 0 {
		return summary{}
	}
	d := func(v int64) time.Duration { return time.Duration(v) }
	return summary{N: int(h.n), Min: d(h.min), Max: d(h.max), Mean: d(h.sum / int64(h.n)),
		P50: d(h.quantile(50)), P90: d(h.quantile(90)), P99: d(h.quantile(99))}
}

// wireHist is the sparse form sent over the worker pipe: [bucket, count]
// pairs of the non-empty buckets.
type wireHist struct {
	N       uint64      `json:"n"`
	Sum     int64       `json:"sum"`
	Min     int64       `json:"min"`
	Max     int64       `json:"max"`
	Buckets [][2]uint64 `json:"b,omitempty"`
}

func (h *hist) wire() wireHist {
	w := wireHist{N: h.n, Sum: h.sum, Min: h.min, Max: h.max}
	for i, c := range h.counts {
		if c != 0 {
			w.Buckets = append(w.Buckets, [2]uint64{uint64(i), c})
		}
	}
	return w
}

// hist rebuilds the histogram; bucket numbers and counts must add up.
func (w wireHist) hist() (*hist, error) {
	h := newHist()
	var total uint64
	for _, b := range w.Buckets {
		if b[0] >= uint64(len(h.counts)) {
			return nil, fmt.Errorf("histogram bucket %d out of range", b[0])
		}
		h.counts[b[0]] += b[1]
		total += b[1]
	}
	if total != w.N {
		return nil, fmt.Errorf("histogram counts add up to %d, not %d", total, w.N)
	}
	h.n, h.sum, h.min, h.max = w.N, w.Sum, w.Min, w.Max
	return h, nil
}
