// Package cli holds what every program's main shares: Pushpin-style log
// options turned into a zerolog logger, and a signal-cancelled context.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/configs"
)

// Logger builds the process logger from --logfile, --loglevel and
// --verbose. The returned close func releases the log file.
func Logger(logFile, logLevel string, verbose bool) (zerolog.Logger, func(), error) {
	var out io.Writer = os.Stderr
	closeFn := func() {}
	if logFile != "" {
		f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return zerolog.Nop(), closeFn, fmt.Errorf("--logfile: %w", err)
		}
		out, closeFn = f, func() { f.Close() }
	}
	level := configs.LevelInfo
	if verbose {
		level = configs.LevelDebug
	}
	if logLevel != "" {
		n, err := strconv.Atoi(logLevel)
		if err != nil {
			closeFn()
			return zerolog.Nop(), func() {}, fmt.Errorf("--loglevel: %q is not a number", logLevel)
		}
		level = n
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	log := zerolog.New(zerolog.ConsoleWriter{Out: out, NoColor: true, TimeFormat: "2006-01-02 15:04:05.000"}).
		Level(Level(level)).With().Timestamp().Logger()
	return log, closeFn, nil
}

// Level maps Pushpin's numeric levels (0 error … 3 debug, 4+ trace).
func Level(n int) zerolog.Level {
	switch {
	case n <= configs.LevelError:
		return zerolog.ErrorLevel
	case n == configs.LevelWarning:
		return zerolog.WarnLevel
	case n == configs.LevelInfo:
		return zerolog.InfoLevel
	case n == configs.LevelDebug:
		return zerolog.DebugLevel
	}
	return zerolog.TraceLevel
}

// SignalContext is cancelled by SIGINT or SIGTERM.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
}
