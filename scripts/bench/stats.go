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
// owned by the event loop serving the receiver's connection.
type tally struct {
	seen                     []uint64 // bitset of seqs received
	k, maxSeq                int
	distinct, dups, reorders int
	bogus                    int // seq out of range
}

func newTally(k int) *tally {
	t := &tally{}
	t.init(k, make([]uint64, tallyWords(k)))
	return t
}

// tallyWords is the bitset size for k messages; the event loops cut every
// connection's bitset out of one slab.
func tallyWords(k int) int { return (k + 63) / 64 }

func (t *tally) init(k int, seen []uint64) { *t = tally{k: k, seen: seen, maxSeq: -1} }

// add records message seq; it reports whether seq was new (so its latency
// counts) rather than a duplicate or out of range.
func (t *tally) add(seq int) bool {
	if seq >= t.k {
		t.bogus++
		return false
	}
	w, bit := seq/64, uint64(1)<<(seq%64)
	if t.seen[w]&bit != 0 {
		t.dups++
		return false
	}
	t.seen[w] |= bit
	t.distinct++
	if seq < t.maxSeq {
		t.reorders++
	} else {
		t.maxSeq = seq
	}
	return true
}

func (t *tally) complete() bool { return t.distinct == t.k }

// counts add up tallies; workers send them to the coordinator.
type counts struct {
	Receivers  int `json:"receivers"`
	Delivered  int `json:"delivered"`
	Dups       int `json:"dups"`
	Reorders   int `json:"reorders"`
	Bogus      int `json:"bogus"`
	Incomplete int `json:"incomplete"` // receivers missing at least one message
	// Why messages are missing, per receiver (WebSocket scenarios report them).
	Holes       int `json:"holes,omitempty"`        // messages missing before a later one that arrived
	GapRecv     int `json:"gap_recv,omitempty"`     // receivers with holes, or missing messages while still open
	OpenMissing int `json:"open_missing,omitempty"` // messages missing at the end on connections still open
	ClosedFrame int `json:"closed_frame,omitempty"` // receivers the target closed with a close frame
	ClosedOther int `json:"closed_other,omitempty"` // receivers the target closed without one
}

// addReceiver adds one held receiver's tally and how its connection ended
// (endedNot, endedFrame, endedOther).
func (c *counts) addReceiver(t *tally, ended uint8) {
	c.addTally(t)
	holes := 0
	if t.maxSeq >= 0 {
		holes = t.maxSeq + 1 - t.distinct
	}
	c.Holes += holes
	tail := t.k - t.distinct - holes
	if ended == endedNot {
		c.OpenMissing += tail
	}
	if holes > 0 || (ended == endedNot && tail > 0) {
		c.GapRecv++
	}
	switch ended {
	case endedFrame:
		c.ClosedFrame++
	case endedOther:
		c.ClosedOther++
	}
}

func (c *counts) addTally(t *tally) {
	c.Receivers++
	c.Delivered += t.distinct
	c.Dups += t.dups
	c.Reorders += t.reorders
	c.Bogus += t.bogus
	if !t.complete() {
		c.Incomplete++
	}
}

func (c *counts) add(o counts) {
	c.Receivers += o.Receivers
	c.Delivered += o.Delivered
	c.Dups += o.Dups
	c.Reorders += o.Reorders
	c.Bogus += o.Bogus
	c.Incomplete += o.Incomplete
	c.Holes += o.Holes
	c.GapRecv += o.GapRecv
	c.OpenMissing += o.OpenMissing
	c.ClosedFrame += o.ClosedFrame
	c.ClosedOther += o.ClosedOther
}

// totals are the counts of every held receiver against what was expected.
type totals struct {
	Expected, Delivered, Lost int
	Dups, Reorders, Bogus     int
	Incomplete                int
}

// totalsOf counts k messages to each of the receivers.
func totalsOf(c counts, k int) totals {
	exp := c.Receivers * k
	return totals{Expected: exp, Delivered: c.Delivered, Lost: exp - c.Delivered, Dups: c.Dups,
		Reorders: c.Reorders, Bogus: c.Bogus, Incomplete: c.Incomplete}
}
