package cli

import (
	"context"
	"errors"

	"github.com/spf13/pflag"
)

// LogFlags are Pushpin's log options, the same for every tier.
type LogFlags struct {
	File, Level string
	Verbose     bool
}

// Add registers --logfile, --loglevel and --verbose on f.
func (l *LogFlags) Add(f *pflag.FlagSet) {
	f.StringVar(&l.File, "logfile", "", "File to log to.")
	f.StringVar(&l.Level, "loglevel", "", "Log level (default: 2).")
	f.BoolVar(&l.Verbose, "verbose", false, "Verbose output. Same as --loglevel=3.")
}

// Process is a tier's server as Serve runs it.
type Process interface {
	Run(ctx context.Context) error
}

// Serve is the body of every tier's command. It catches SIGHUP first, so
// that one arriving during start-up does not end the process, opens the
// log, and calls start (config and constructor) with it; then it runs the
// process start returned until SIGINT or SIGTERM, each SIGHUP reopening
// the log file and calling reload (nil: nothing to reload). A nil process
// means start did all there was to do. Errors are logged, naming what
// failed, and marked Logged for Main.
func Serve(what string, lf LogFlags, start func(log *Log) (p Process, reload func(), err error)) error {
	hup := CatchHangup()
	defer hup.Stop()
	log, err := Logger(lf.File, lf.Level, lf.Verbose)
	if err != nil {
		return err
	}
	defer log.Close()
	servePprof(what, log)
	p, reload, err := start(log)
	if err != nil {
		log.Error().Err(err).Msg("starting " + what)
		return Logged(err)
	}
	if p == nil {
		return nil
	}
	ctx, stop := SignalContext()
	defer stop()
	go hup.Serve(ctx, log, reload)
	if err := p.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Error().Err(err).Msg(what + " stopped")
		return Logged(err)
	}
	return nil
}
