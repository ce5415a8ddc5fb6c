package handler

import (
	"sync"
	"sync/atomic"
)

// subChanges carries channel (un)subscriptions from the engine to the SUB
// input. The engine must never wait for the SUB input: that goroutine also
// posts publishes to the engine, and a bounded queue each way deadlocked
// both during a mass unsubscribe. So the engine records only the latest
// wanted state per channel, under a mutex, and the SUB input takes the
// whole set between receives; the first change after a take wakes its
// receive (zmq.Socket.Wake), so a subscription goes out at once rather
// than after the receive's timeout. Bounded by the number of channels; a
// channel that comes and goes before the SUB input looks costs it nothing.
type subChanges struct {
	dirty atomic.Bool // want has entries: saves the SUB input a lock per message
	mu    sync.Mutex
	want  map[string]bool // channel → subscribed
	wake  func()          // interrupts the SUB input's receive; never blocks
}

// set records that ch is now wanted (add) or not; it never blocks on the
// SUB input.
func (c *subChanges) set(ch string, add bool) {
	c.mu.Lock()
	if c.want == nil {
		c.want = map[string]bool{}
	}
	c.want[ch] = add
	c.mu.Unlock()
	if !c.dirty.Swap(true) && c.wake != nil {
		c.wake()
	}
}

// take returns the changes recorded since the last take (nil when none).
func (c *subChanges) take() map[string]bool {
	if !c.dirty.Swap(false) {
		return nil
	}
	c.mu.Lock()
	m := c.want
	c.want = nil
	c.mu.Unlock()
	return m
}
