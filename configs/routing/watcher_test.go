package routing

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/internal/logbuf"
	"github.com/pushpin-go/pushpin/internal/testwait"
)

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
	logs := &logbuf.Buffer{}
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
	testwait.For(t, 5*time.Second, hostIs(w, "two"))

	// Editor-style save: write a temp file, rename over the original.
	tmp := filepath.Join(dir, ".routes.swp")
	if err := os.WriteFile(tmp, []byte("* three:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 5*time.Second, hostIs(w, "three"))

	// A new route next to a typo loads; the typo is skipped and logged
	// with its file and line, as Pushpin does.
	if err := os.WriteFile(path, []byte("* four:1\n*,proto=bogus x:1\nnew.example new:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 5*time.Second, hostIs(w, "four"))
	if r, ok := w.Current().Match("new.example", "/", false, false); !ok || r.Targets[0].Host != "new" {
		t.Errorf("the good line after the bad one did not load: %v %v", r, ok)
	}
	testwait.For(t, 5*time.Second, func() error {
		l := logs.String()
		if !strings.Contains(l, `"file":"`+path+`","line":2`) || !strings.Contains(l, `proto=\"bogus\"`) ||
			!strings.Contains(l, "skipping bad route line") {
			return errors.New("bad line not logged with file and line: " + l)
		}
		return nil
	})

	// Removing the file keeps the routes too; recreating it reloads.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := w.Reload(); err == nil || firstHost(w) != "four" {
		t.Errorf("reload of missing file: %v, %q", err, firstHost(w))
	}
	if err := os.WriteFile(path, []byte("* five:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 5*time.Second, hostIs(w, "five"))

	// Changes to other files in the directory are ignored.
	if err := os.WriteFile(filepath.Join(dir, "other"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Reload (SIGHUP calls it) applies Pushpin's rule too: bad lines are
// skipped, the rest replace the table.
func TestWatcherManualReload(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "routes")
	if err := os.WriteFile(path, []byte("* one:1\nbad line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &logbuf.Buffer{}
	w, err := NewWatcher(path, zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// At startup bad lines are skipped, as Pushpin does.
	if firstHost(w) != "one" || !strings.Contains(logs.String(), `"line":2`) ||
		!strings.Contains(logs.String(), "skipping bad route line") {
		t.Fatalf("startup: %q %s", firstHost(w), logs.String())
	}
	if err := os.WriteFile(path, []byte("* two:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := w.Reload(); err != nil || firstHost(w) != "two" {
		t.Fatalf("reload: %v %q", err, firstHost(w))
	}
	if err := os.WriteFile(path, []byte("other.example x:1\n* three:1\n* x\nother.example y:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := w.Reload(); err != nil || firstHost(w) != "three" {
		t.Fatalf("reload with bad lines: %v %q", err, firstHost(w))
	}
	// Line 3 (no port) and line 4 (duplicate condition) are skipped.
	if w.Current().Len() != 2 {
		t.Fatalf("routes %d, want 2", w.Current().Len())
	}
	for _, line := range []string{`"line":3`, `"line":4`} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("reload log lacks %s: %s", line, logs.String())
		}
	}
	if !strings.Contains(logs.String(), `"skipped":2`) {
		t.Errorf("reload log does not count the skipped lines: %s", logs.String())
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
	w := NewStatic([]string{"* test"}, zerolog.Nop())
	if r, ok := w.Current().Match("x", "/", false, false); !ok || r.Targets[0].Type != TargetTest || w.Reload() != nil {
		t.Fatal("static routes")
	}
	// A bad --route line is skipped and logged, as Pushpin does.
	logs := &logbuf.Buffer{}
	w2 := NewStatic([]string{"* nohost", "* test"}, zerolog.New(logs))
	if w2.Current().Len() != 1 || !strings.Contains(logs.String(), `"file":"--route","line":1`) {
		t.Fatalf("bad --route line: %d routes, log %s", w2.Current().Len(), logs.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Run(ctx); err != nil {
		t.Fatal(err)
	}
}
