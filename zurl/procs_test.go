package zurl

import (
	"os"
	"runtime"
	"testing"
)

func TestLimitProcs(t *testing.T) {
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	t.Setenv("GOMAXPROCS", "3") // an operator's choice stands
	runtime.GOMAXPROCS(3)
	LimitProcs()
	if n := runtime.GOMAXPROCS(0); n != 3 {
		t.Fatalf("GOMAXPROCS=3 in the environment: %d Ps", n)
	}
	os.Unsetenv("GOMAXPROCS") // t.Setenv restores it
	LimitProcs()
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Fatalf("no GOMAXPROCS in the environment: %d Ps, want 1", n)
	}
}
