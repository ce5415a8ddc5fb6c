package testwait

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestForReturnsOnceTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	For(t, 5*time.Second, func() error {
		if n.Add(1) < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if got := n.Load(); got != 3 {
		t.Fatalf("condition called %d times, want 3", got)
	}
}

// fakeTB records a failure instead of ending the test, so that For's
// failure path can be observed.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = format
	panic(f)
}

func TestForFailsWithTheLastErrorPastTheDeadline(t *testing.T) {
	f := &fakeTB{TB: t}
	func() {
		defer func() {
			if r := recover(); r != f {
				t.Fatalf("For did not fail the test (recovered %v)", r)
			}
		}()
		For(f, 30*time.Millisecond, func() error { return errors.New("never") })
	}()
	if f.failed == "" {
		t.Fatal("no failure recorded")
	}
}
