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

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/runner"
)

// Logger builds the process logger from --logfile, --loglevel and
// --verbose, in Pushpin's line format (runner.NewLogger) so that merged
// output reads the same for every tier. The returned close func releases
// the log file.
func Logger(logFile, logLevel string, verbose bool) (zerolog.Logger, func(), error) {
	var out io.Writer = os.Stderr
	closeFn := func() {}
	if logFile != "" {
		f, err := runner.OpenLogFile(logFile)
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
	return runner.NewLogger(out, level), closeFn, nil
}

// SignalContext is cancelled by SIGINT or SIGTERM.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
}
