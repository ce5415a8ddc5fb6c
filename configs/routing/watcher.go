package routing

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/rs/zerolog"
)

// DefaultReloadDelay is how long the Watcher waits after the last change
// before reloading, like Pushpin's one-second timer; editors write a file in
// several steps and we want the finished one.
const DefaultReloadDelay = time.Second

// Watcher holds the current routes of a file and replaces them when the file
// changes (fsnotify) or Reload is called (SIGHUP). Bad lines are skipped and
// logged with their file and line, the rest load: at start-up and on reload
// alike, a routes file gives the table Pushpin 1.36 gives (--check-config is
// the strict mode). Only a file that cannot be read keeps the previous
// table.
type Watcher struct {
	path  string
	log   zerolog.Logger
	delay time.Duration

	cur atomic.Pointer[Table]
	mu  sync.Mutex // serializes reloads
	fsw *fsnotify.Watcher
}

// WatcherOption configures a Watcher.
type WatcherOption func(*Watcher)

// WithReloadDelay sets the debounce delay (default DefaultReloadDelay).
func WithReloadDelay(d time.Duration) WatcherOption { return func(w *Watcher) { w.delay = d } }

// NewWatcher loads path and starts watching its directory (so rename-replace
// saves are seen). Bad lines are logged and skipped; an unreadable file is
// an error. Call Run to process changes and Close when done.
func NewWatcher(path string, log zerolog.Logger, opts ...WatcherOption) (*Watcher, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("routes %s: %w", path, err)
	}
	w := &Watcher{path: abs, log: log, delay: DefaultReloadDelay}
	for _, o := range opts {
		o(w)
	}
	t, errs := Load(abs)
	if t == nil {
		return nil, errors.Join(errs...)
	}
	logBadLines(log, errs)
	logUnknown(log, t)
	w.cur.Store(t)
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watching routes: %w", err)
	}
	if err := fsw.Add(filepath.Dir(abs)); err != nil {
		fsw.Close()
		return nil, fmt.Errorf("watching routes: %w", err)
	}
	w.fsw = fsw
	return w, nil
}

// NewStatic returns a Watcher over fixed routes (pushpin --route lines) that
// never reloads; Run just waits for ctx. Bad lines are skipped and logged,
// as Pushpin does with --route.
func NewStatic(lines []string, log zerolog.Logger) *Watcher {
	t, errs := ParseLines("--route", lines)
	logBadLines(log, errs)
	logUnknown(log, t)
	w := &Watcher{log: log}
	w.cur.Store(t)
	return w
}

// Current returns the routes in effect. Cheap; call it per request.
func (w *Watcher) Current() *Table { return w.cur.Load() }

// Path returns the absolute path of the watched file ("" for NewStatic).
func (w *Watcher) Path() string { return w.path }

// Reload re-reads the file now and swaps in its routes, bad lines skipped
// and logged (file and line) as at start-up. Only when the file cannot be
// read are the current routes kept; that error is logged and returned.
func (w *Watcher) Reload() error {
	if w.path == "" {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	t, errs := Load(w.path)
	if t == nil {
		err := errors.Join(errs...)
		w.log.Error().Err(err).Str("file", w.path).Msg("routes not reloaded, keeping the previous routes")
		return err
	}
	logBadLines(w.log, errs)
	logUnknown(w.log, t)
	w.cur.Store(t)
	w.log.Info().Str("file", w.path).Int("routes", t.Len()).Int("skipped", len(errs)).Msg("routes reloaded")
	return nil
}

// Run processes file change events until ctx is done, reloading once the
// file has been quiet for the reload delay.
func (w *Watcher) Run(ctx context.Context) error {
	if w.fsw == nil {
		<-ctx.Done()
		return nil
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return nil
			}
			if filepath.Clean(ev.Name) != w.path || ev.Op == fsnotify.Chmod {
				continue
			}
			timer.Reset(w.delay)
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return nil
			}
			w.log.Warn().Err(err).Msg("routes watcher error")
		case <-timer.C:
			_ = w.Reload() // logged inside
		}
	}
}

// Close stops watching. Run returns after Close.
func (w *Watcher) Close() error {
	if w.fsw == nil {
		return nil
	}
	return w.fsw.Close()
}

// logBadLines logs each skipped line with its file and line number.
func logBadLines(log zerolog.Logger, errs []error) {
	for _, e := range errs {
		var le *LineError
		if errors.As(e, &le) {
			log.Warn().Str("file", le.File).Int("line", le.Line).Err(le.Err).Msg("skipping bad route line")
			continue
		}
		log.Warn().Err(e).Msg("skipping bad route line")
	}
}

func logUnknown(log zerolog.Logger, t *Table) {
	for _, r := range t.routes {
		for _, p := range r.NotBuilt {
			log.Warn().Str("file", r.Source).Int("line", r.Line).Str("prop", p).Msg("route prop not acted on yet, ignored")
		}
		for _, p := range r.Unknown {
			log.Warn().Str("file", r.Source).Int("line", r.Line).Str("prop", p).Msg("ignoring unknown route condition prop")
		}
		for _, tg := range r.Targets {
			for _, p := range tg.Unknown {
				log.Warn().Str("file", r.Source).Int("line", r.Line).Str("prop", p).Msg("ignoring unknown route target prop")
			}
		}
	}
	for _, id := range t.DuplicateIDs() {
		log.Warn().Str("id", id).Msg("route id used more than once; it cannot be selected by id")
	}
}
