package zurl

import (
	"sync"
	"time"
)

// ackQueue holds the sessions whose ack is deferred (session.ack). The
// delay is the same for all, so start order is due order: a FIFO and one
// timer, armed only while the queue holds something, replace a timer per
// request (two allocations and a timer-heap insert and delete each). A due
// entry is looked up by key: an ended session is simply gone, and the
// queue keeps no session alive.
type ackQueue struct {
	delay time.Duration
	fire  func(key sessKey) // called for every due entry, on the timer's goroutine
	mu    sync.Mutex
	items []ackItem
	head  int
	timer *time.Timer
	armed bool
}

type ackItem struct {
	key sessKey
	due time.Time
}

func newAckQueue(delay time.Duration, fire func(key sessKey)) *ackQueue {
	q := &ackQueue{delay: delay, fire: fire}
	q.timer = time.AfterFunc(time.Hour, q.expire)
	q.timer.Stop()
	return q
}

// push defers key's ack by the delay.
func (q *ackQueue) push(key sessKey) {
	now := time.Now()
	q.mu.Lock()
	q.items = append(q.items, ackItem{key: key, due: now.Add(q.delay)})
	if !q.armed {
		q.armed = true
		q.timer.Reset(q.delay)
	}
	q.mu.Unlock()
}

// expire runs on the timer: fires what is due and re-arms for the rest.
func (q *ackQueue) expire() {
	now := time.Now()
	q.mu.Lock()
	var keys []sessKey // expire may overlap itself (a re-arm fires at once): no shared scratch
	for q.head < len(q.items) && !q.items[q.head].due.After(now) {
		keys = append(keys, q.items[q.head].key)
		q.items[q.head] = ackItem{}
		q.head++
	}
	switch {
	case q.head == len(q.items):
		q.items, q.head = q.items[:0], 0
		q.armed = false
	default:
		if q.head > 256 && q.head*2 > len(q.items) {
			n := copy(q.items, q.items[q.head:])
			clear(q.items[n:])
			q.items, q.head = q.items[:n], 0
		}
		q.timer.Reset(q.items[q.head].due.Sub(now))
	}
	q.mu.Unlock()
	for _, k := range keys {
		q.fire(k)
	}
}

// stop disarms the timer (the server is stopping).
func (q *ackQueue) stop() {
	q.mu.Lock()
	q.timer.Stop()
	q.armed = false
	q.mu.Unlock()
}
