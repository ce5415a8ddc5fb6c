package routing

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// syncBuf collects log output from the watcher goroutine.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func firstHost(w *Watcher) string {
	r, ok := w.Current().Match("h", "/", false, false)
	if !ok {
		return ""
	}
	return r.Targets[0].Host
}

func hostIs(w *Watcher, want string) func() error {
	return func() error {
		if got := firstHost(w); got != want {
			return errors.New("target " + got + ", want " + want)
		}
		return nil
	}
}

func TestWatcherReloads(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "routes")
	if err := os.WriteFile(path, []byte("* one:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuf{}
	w, err := NewWatcher(path, zerolog.New(logs), WithReloadDelay(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		w.Close()
	})
	if firstHost(w) != "one" {
		t.Fatalf("initial %q", firstHost(w))
	}

	// In-place write.
	if err := os.WriteFile(path, []byte("* two:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, hostIs(w, "two"))

	// Editor-style save: write a temp file, rename over the original.
	tmp := filepath.Join(dir, ".routes.swp")
	if err := os.WriteFile(tmp, []byte("* three:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, hostIs(w, "three"))

	// A bad edit keeps the old routes and says why.
	if err := os.WriteFile(path, []byte("* four:1\n*,proto=bogus x:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		if !strings.Contains(logs.String(), "keeping the previous routes") {
			return errors.New("no log yet")
		}
		return nil
	})
	if firstHost(w) != "three" {
		t.Fatalf("bad file replaced routes: %q", firstHost(w))
	}
	if !strings.Contains(logs.String(), `proto=\"bogus\"`) || !strings.Contains(logs.String(), "routes:2") {
		t.Errorf("log does not say why: %s", logs.String())
	}

	// Removing the file keeps the routes too; recreating it reloads.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := w.Reload(); err == nil || firstHost(w) != "three" {
		t.Errorf("reload of missing file: %v, %q", err, firstHost(w))
	}
	if err := os.WriteFile(path, []byte("* five:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, hostIs(w, "five"))

	// Changes to other files in the directory are ignored.
	if err := os.WriteFile(filepath.Join(dir, "other"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWatcherManualReload(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "routes")
	if err := os.WriteFile(path, []byte("* one:1\nbad line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuf{}
	w, err := NewWatcher(path, zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// At startup bad lines are skipped, as Pushpin does.
	if firstHost(w) != "one" || !strings.Contains(logs.String(), "skipping bad route") {
		t.Fatalf("startup: %q %s", firstHost(w), logs.String())
	}
	if err := os.WriteFile(path, []byte("* two:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := w.Reload(); err != nil || firstHost(w) != "two" {
		t.Fatalf("reload: %v %q", err, firstHost(w))
	}
	if err := os.WriteFile(path, []byte("* three:1\n* x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := w.Reload(); !errors.Is(err, ErrBadRoutes) || firstHost(w) != "two" {
		t.Fatalf("bad reload: %v %q", err, firstHost(w))
	}
}

func TestWatcherMissingFile(t *testing.T) {
	t.Parallel()
	if _, err := NewWatcher(filepath.Join(t.TempDir(), "nope"), zerolog.Nop()); err == nil {
		t.Fatal("no error for a missing routes file")
	}
}

func TestStatic(t *testing.T) {
	t.Parallel()
	w, err := NewStatic([]string{"* test"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := w.Current().Match("x", "/", false, false); !ok || r.Targets[0].Type != TargetTest || w.Reload() != nil {
		t.Fatal("static routes")
	}
	if _, err := NewStatic([]string{"* nohost"}, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "--route:1:") {
		t.Fatalf("err %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Run(ctx); err != nil {
		t.Fatal(err)
	}
}
