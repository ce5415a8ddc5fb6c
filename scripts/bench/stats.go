package main

import (
	"slices"
	"time"
)

// summary describes a latency sample.
type summary struct {
	N                       int
	Min, P50, P90, P99, Max time.Duration
	Mean                    time.Duration
}

// summarize sorts d in place and returns its summary (zero for no samples).
func summarize(d []time.Duration) summary {
	if len(d) == 0 {
		return summary{}
	}
	slices.Sort(d)
	var sum time.Duration
	for _, v := range d {
		sum += v
	}
	return summary{
		N: len(d), Min: d[0], Max: d[len(d)-1], Mean: sum / time.Duration(len(d)),
		P50: percentile(d, 50), P90: percentile(d, 90), P99: percentile(d, 99),
	}
}

// percentile is the nearest-rank percentile of sorted samples: the smallest
// value with at least p% of the samples at or below it.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	rank := int(p/100*float64(n) + 0.9999999)
	if rank > n {
		rank = n
	}
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

// tally is what one receiver got of k numbered messages (seq 0..k-1). It is
// owned by the receiver's goroutine and read after that goroutine ended.
type tally struct {
	k                        int
	seen                     []uint64 // bitset of seqs received
	maxSeq                   int
	distinct, dups, reorders int
	bogus                    int // seq out of range
	lat                      []time.Duration
}

func newTally(k int) *tally {
	return &tally{k: k, seen: make([]uint64, (k+63)/64), maxSeq: -1, lat: make([]time.Duration, 0, k)}
}

// add records message seq received lat after it was published.
func (t *tally) add(seq int, lat time.Duration) {
	if seq >= t.k {
		t.bogus++
		return
	}
	w, bit := seq/64, uint64(1)<<(seq%64)
	if t.seen[w]&bit != 0 {
		t.dups++
		return
	}
	t.seen[w] |= bit
	t.distinct++
	if seq < t.maxSeq {
		t.reorders++
	} else {
		t.maxSeq = seq
	}
	t.lat = append(t.lat, lat)
}

func (t *tally) complete() bool { return t.distinct == t.k }

// totals add up the tallies of every receiver.
type totals struct {
	Expected, Delivered, Lost int
	Dups, Reorders, Bogus     int
	Incomplete                int // receivers missing at least one message
	Lat                       []time.Duration
}

// mergeTallies adds receivers' tallies; receivers that never got a tally
// (e.g. their connection failed) count as having lost everything.
func mergeTallies(ts []*tally, receivers, k int) totals {
	out := totals{Expected: receivers * k}
	n := 0
	for _, t := range ts {
		n += len(t.lat)
	}
	out.Lat = make([]time.Duration, 0, n)
	for _, t := range ts {
		out.Delivered += t.distinct
		out.Dups += t.dups
		out.Reorders += t.reorders
		out.Bogus += t.bogus
		if !t.complete() {
			out.Incomplete++
		}
		out.Lat = append(out.Lat, t.lat...)
	}
	out.Incomplete += receivers - len(ts)
	out.Lost = out.Expected - out.Delivered
	return out
}
