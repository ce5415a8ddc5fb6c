// Package testwait is the one poll-until-true helper of the project's
// tests: a test waits for an event (a socket answering, a log line, a
// count reached) with a deadline, never for a fixed time.
package testwait

import (
	"testing"
	"time"
)

// Every is how often For polls: often enough that a test waits at most
// this long past the event, seldom enough not to load the machine.
const Every = 10 * time.Millisecond

// For calls fn until it returns nil, and fails the test with fn's last
// error if that has not happened within d.
func For(t testing.TB, d time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", d, err)
		}
		time.Sleep(Every)
	}
}
