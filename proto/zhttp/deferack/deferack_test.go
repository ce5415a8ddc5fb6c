package deferack

import (
	"sync"
	"testing"
	"time"
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
	time.Sleep(2 * d)
	pushed["d"] = time.Since(start)
	q.Push("d") // the queue ran empty: must re-arm
	time.Sleep(2 * d)
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
