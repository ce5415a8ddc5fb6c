package main

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// receivers read numbered messages from a set of holds, one goroutine each.
type receivers struct {
	holds   []*hold
	tallies []*tally
	last    []int64 // per receiver: unix ns of its last numbered message
	probed  atomic.Int64
	done    atomic.Int64
	ended   atomic.Int64 // readers returned (connection closed by either side)
	wg      sync.WaitGroup
	stopped bool
}

// startReceivers starts reading every hold, expecting k numbered messages each.
func startReceivers(holds []*hold, k int) *receivers {
	r := &receivers{holds: holds, tallies: make([]*tally, len(holds)), last: make([]int64, len(holds))}
	for i, h := range holds {
		r.tallies[i] = newTally(k)
		r.wg.Add(1)
		go r.read(i, h)
	}
	return r
}

func (r *receivers) read(i int, h *hold) {
	defer r.wg.Done()
	defer r.ended.Add(1)
	t := r.tallies[i]
	probed := false
	for {
		line, err := h.body.ReadString('\n')
		if err != nil {
			return // closed by stop, or by the target: the tally shows what was lost
		}
		now := time.Now()
		probe, seq, sent, ok := parseLine(line)
		if probe && !probed {
			probed = true
			r.probed.Add(1)
			continue
		}
		if !ok {
			continue
		}
		was := t.complete()
		t.add(seq, now.Sub(time.Unix(0, sent)))
		r.last[i] = now.UnixNano()
		if !was && t.complete() {
			r.done.Add(1)
		}
	}
}

// stop closes every hold and waits for the readers; tallies are final after it.
func (r *receivers) stop() {
	if r.stopped {
		return
	}
	r.stopped = true
	closeHolds(r.holds)
	r.wg.Wait()
}

// lastReceive is the latest numbered-message arrival over all receivers
// (valid after stop).
func (r *receivers) lastReceive() time.Time {
	var m int64
	for _, v := range r.last {
		m = max(m, v)
	}
	return time.Unix(0, m)
}

// waitCount polls until counter reaches want, ctx ends or d passes. Between
// polls it calls tick (e.g. to publish another probe); a tick error stops it.
func waitCount(ctx context.Context, counter *atomic.Int64, want int64, d, every time.Duration, tick func() error) error {
	deadline := time.Now().Add(d)
	for counter.Load() < want {
		if tick != nil {
			if err := tick(); err != nil {
				return err
			}
		}
		if time.Now().After(deadline) {
			return errTimeout
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
	return nil
}

var errTimeout = errors.New("timed out")
