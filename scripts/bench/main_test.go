package main

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/internal/testwait"
)

// TestMain lets the test binary serve as the fleet's worker process, as the
// tool re-executes itself.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == workerArg {
		os.Exit(workerMain())
	}
	os.Exit(m.Run())
}

// testClientOpts runs workers from the test binary, perWorker connections each.
func testClientOpts(t *testing.T, perWorker int) clientOpts {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return clientOpts{Exe: exe, PerWorker: perWorker, PerSrc: 10000, OpenTimeout: 5 * time.Second, Reach: time.Second}
}

// waitStatus polls the fleet until ok, failing after 10 s.
func waitStatus(t *testing.T, f *fleet, ok func(statusReply) bool) statusReply {
	t.Helper()
	var s statusReply
	testwait.For(t, 10*time.Second, func() error {
		var err error
		if s, err = f.status(t.Context()); err != nil {
			t.Fatal(err)
		}
		if !ok(s) {
			return fmt.Errorf("status %+v", s)
		}
		return nil
	})
	return s
}
