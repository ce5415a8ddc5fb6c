package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A start that fails is logged, naming what failed, and the error comes
// back marked Logged (Main prints it only once).
func TestServeLogsAFailedStart(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "x.log")
	bad := errors.New("no such config")
	err := Serve("handler", LogFlags{File: logFile}, func(*Log) (Process, func(), error) { return nil, nil, bad })
	var l *loggedError
	if !errors.Is(err, bad) || !errors.As(err, &l) {
		t.Fatalf("err %v, want %v marked as logged", err, bad)
	}
	b, _ := os.ReadFile(logFile)
	if !strings.Contains(string(b), "starting handler") || !strings.Contains(string(b), "no such config") {
		t.Fatalf("log %q lacks the failure", b)
	}
}

type failingProcess struct{ err error }

func (p failingProcess) Run(context.Context) error { return p.err }

// A start with nothing to run succeeds at once; a process that ends in an
// error is logged as stopped.
func TestServeRunsWhatStartReturned(t *testing.T) {
	if err := Serve("connmgr", LogFlags{}, func(*Log) (Process, func(), error) { return nil, nil, nil }); err != nil {
		t.Fatalf("nothing to run: %v", err)
	}
	logFile := filepath.Join(t.TempDir(), "x.log")
	bad := errors.New("socket gone")
	err := Serve("zurl", LogFlags{File: logFile}, func(*Log) (Process, func(), error) { return failingProcess{bad}, nil, nil })
	if !errors.Is(err, bad) {
		t.Fatalf("err %v, want %v", err, bad)
	}
	if b, _ := os.ReadFile(logFile); !strings.Contains(string(b), "zurl stopped") {
		t.Fatalf("log %q lacks the stop", b)
	}
}
