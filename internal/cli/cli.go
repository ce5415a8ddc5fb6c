// Package cli holds what every program's command line shares: Pushpin-style
// log options turned into a zerolog logger, a signal-cancelled context,
// SIGHUP handling, and Main, the body of every cmd/ main. The commands
// themselves are built in their process packages (connmgr.Command, ...).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/internal/logfmt"
)

// Log is a process logger built from --logfile, --loglevel and --verbose.
// With --logfile, Reopen reopens the file (log rotation on SIGHUP).
type Log struct {
	zerolog.Logger
	file *logfmt.LogFile
}

// Logger builds the process logger from --logfile, --loglevel and
// --verbose, in Pushpin's line format (logfmt.NewLogger) so that merged
// output reads the same for every tier. Close releases the log file.
func Logger(logFile, logLevel string, verbose bool) (*Log, error) {
	level := configs.LevelInfo
	if verbose {
		level = configs.LevelDebug
	}
	if logLevel != "" {
		n, err := strconv.Atoi(logLevel)
		if err != nil {
			return nil, fmt.Errorf("--loglevel: %q is not a number", logLevel)
		}
		level = n
	}
	l := &Log{}
	var out io.Writer = os.Stderr
	if logFile != "" {
		f, err := logfmt.OpenLogFile(logFile)
		if err != nil {
			return nil, fmt.Errorf("--logfile: %w", err)
		}
		out, l.file = f, f
	}
	l.Logger = logfmt.NewLogger(out, level)
	return l, nil
}

// Reopen reopens --logfile at its path, so that a file logrotate moved away
// is replaced by a new one. Without --logfile it does nothing.
func (l *Log) Reopen() error {
	if l.file == nil {
		return nil
	}
	return l.file.Reopen()
}

// Close releases the log file, if any.
func (l *Log) Close() {
	if l.file != nil {
		_ = l.file.Close()
	}
}

// SignalContext is cancelled by SIGINT or SIGTERM.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
}

// Hangup catches SIGHUP, which the runner forwards for routes reload and
// log rotation (what logrotate sends). Left at Go's default, SIGHUP ends the
// process, and the runner then stops every tier.
type Hangup struct{ c chan os.Signal }

// CatchHangup starts catching SIGHUP at once, so that one arriving while
// the program is still starting no longer ends it; Serve acts on them.
func CatchHangup() *Hangup {
	h := &Hangup{c: make(chan os.Signal, 1)}
	signal.Notify(h.c, syscall.SIGHUP)
	return h
}

// Serve answers each SIGHUP until ctx is done, as Pushpin's programs do: it
// reopens the log file, logs "reloading", then calls reload (may be nil).
// A SIGHUP caught before Serve is answered here too.
func (h *Hangup) Serve(ctx context.Context, log *Log, reload func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.c:
			// Reopened first, so that the new file starts with the
			// line saying why.
			err := log.Reopen()
			log.Info().Msg("reloading")
			if err != nil {
				log.Error().Err(err).Msg("reopening log file, logging on to the old one")
			}
			if reload != nil {
				reload()
			}
		}
	}
}

// Stop stops catching SIGHUP.
func (h *Hangup) Stop() { signal.Stop(h.c) }

// Main runs cmd and exits: 0 on success, else 1 after printing the error to
// stderr as "<program>: <error>", unless the command logged it already
// (Logged). Every cmd/ main ends in it.
func Main(cmd *cobra.Command) {
	err := cmd.Execute()
	if err == nil {
		return
	}
	var l *loggedError
	if !errors.As(err, &l) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", cmd.Name(), err)
	}
	os.Exit(1)
}

// Logged marks err as already written to the program's log, so that Main
// does not print it a second time.
func Logged(err error) error { return &loggedError{err} }

type loggedError struct{ err error }

func (e *loggedError) Error() string { return e.err.Error() }
func (e *loggedError) Unwrap() error { return e.err }
