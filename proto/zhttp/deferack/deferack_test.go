package deferack

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/internal/testwait"
)

// Entries fire in push order, each no earlier than its delay; the timer
// re-arms for later entries and again after the queue ran empty.
func TestQueue(t *testing.T) {
	const d = 80 * time.Millisecond
	var mu sync.Mutex
	var fired []string
	var at []time.Duration
	start := time.Now()
	q := New(d, func(k string) {
		mu.Lock()
		fired, at = append(fired, k), append(at, time.Since(start))
		mu.Unlock()
	})
	defer q.Stop()
	pushed := map[string]time.Duration{}
	for _, k := range []string{"a", "b", "c"} {
		pushed[k] = time.Since(start)
		q.Push(k)
		time.Sleep(30 * time.Millisecond)
	}
	firedN := func(n int) func() error {
		return func() error {
			mu.Lock()
			defer mu.Unlock()
			if len(fired) < n {
				return fmt.Errorf("fired %v", fired)
			}
			return nil
		}
	}
	testwait.For(t, 5*time.Second, firedN(3))
	pushed["d"] = time.Since(start)
	q.Push("d") // the queue ran empty: must re-arm
	testwait.For(t, 5*time.Second, firedN(4))
	mu.Lock()
	defer mu.Unlock()
	if len(fired) != 4 || fired[0] != "a" || fired[1] != "b" || fired[2] != "c" || fired[3] != "d" {
		t.Fatalf("fired %v", fired)
	}
	for i, k := range fired {
		if at[i] < pushed[k]+d {
			t.Errorf("%s fired %v after its push, before the %v delay", k, at[i]-pushed[k], d)
		}
	}
}

// A steady stream of entries (one every half millisecond) is fired in
// batches, at most one timer run per slack, not one run per entry; every
// entry still fires, in order, no earlier than its delay.
func TestQueueBatchesUnderLoad(t *testing.T) {
	const d = 40 * time.Millisecond
	const n = 200
	var mu sync.Mutex
	var fired []int
	pushed := make([]time.Time, n)
	late := 0
	q := New(d, func(k int) {
		mu.Lock()
		if time.Since(pushed[k]) < d {
			late-- // fired early: counted below as an error
		}
		fired = append(fired, k)
		mu.Unlock()
	})
	defer q.Stop()
	for i := 0; i < n; i++ {
		mu.Lock()
		pushed[i] = time.Now()
		mu.Unlock()
		q.Push(i)
		time.Sleep(500 * time.Microsecond)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		c := len(fired)
		mu.Unlock()
		if c == n || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(fired) != n {
		t.Fatalf("%d of %d fired", len(fired), n)
	}
	for i, k := range fired {
		if k != i {
			t.Fatalf("fired out of order: %v", fired)
		}
	}
	if late != 0 {
		t.Errorf("%d entries fired before their delay", -late)
	}
	q.mu.Lock()
	runs := q.runs
	q.mu.Unlock()
	// The pushes span n/2 ms at least (more when sleeps overshoot), plus
	// the delay: at one run per slack (5 ms) that is some 25 runs; one per
	// entry would be n.
	if max := n/2 + 10; runs > max {
		t.Errorf("%d timer runs for %d entries, want at most %d", runs, n, max)
	}
}
