// Package deferack holds the sessions whose zhttp ack a server defers:
// Pushpin's servers ack a request at once, ours (proxy, zurl) wait up to
// a delay so that a prompt response can stand in for the ack. Both servers
// share this queue; it is zhttp session timing, no wire format.
package deferack

import (
	"sync"
	"time"
)

// Queue holds the sessions whose ack is deferred. The delay is the same for all, so start order is due order: a FIFO and one
// timer, armed only while the queue holds something, replace a timer per
// request (two allocations and a timer-heap insert and delete each). A due
// entry is looked up by key: an ended session is simply gone, and the
// queue keeps no session alive.
type Queue[K comparable] struct {
	delay time.Duration
	slack time.Duration // the least time between two firings
	fire  func(key K)   // called for every due entry, on the timer's goroutine
	mu    sync.Mutex
	items []item[K]
	head  int
	timer *time.Timer
	armed bool
	runs  int // firings of the timer (the test counts them)
}

type item[K comparable] struct {
	key K
	due time.Time
}

// slackDiv: an ack is at most delay/slackDiv later than its delay.
const slackDiv = 8

// New returns an empty queue; fire is called for every due key, on the
// timer's goroutine.
func New[K comparable](delay time.Duration, fire func(key K)) *Queue[K] {
	q := &Queue[K]{delay: delay, slack: delay / slackDiv, fire: fire}
	q.timer = time.AfterFunc(time.Hour, q.expire)
	q.timer.Stop()
	return q
}

// Push defers key's ack by the delay.
func (q *Queue[K]) Push(key K) {
	now := time.Now()
	q.mu.Lock()
	q.items = append(q.items, item[K]{key: key, due: now.Add(q.delay)})
	if !q.armed {
		q.armed = true
		q.timer.Reset(q.delay)
	}
	q.mu.Unlock()
}

// expire runs on the timer: fires what is due and re-arms for the rest.
func (q *Queue[K]) expire() {
	now := time.Now()
	q.mu.Lock()
	q.runs++
	var keys []K // expire may overlap itself (a re-arm fires at once): no shared scratch
	for q.head < len(q.items) && !q.items[q.head].due.After(now) {
		keys = append(keys, q.items[q.head].key)
		q.items[q.head] = item[K]{}
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
		// Under load an entry is due every few hundred µs: firing for each
		// (a timer run and a goroutine every time, mostly for sessions that
		// have long ended) cost more than the acks. Waiting at least slack
		// lets one firing take all that fell due meanwhile, at the price of
		// an ack up to slack late.
		q.timer.Reset(max(q.items[q.head].due.Sub(now), q.slack))
	}
	q.mu.Unlock()
	for _, k := range keys {
		q.fire(k)
	}
}

// Stop disarms the timer (the server is stopping).
func (q *Queue[K]) Stop() {
	q.mu.Lock()
	q.timer.Stop()
	q.armed = false
	q.mu.Unlock()
}
