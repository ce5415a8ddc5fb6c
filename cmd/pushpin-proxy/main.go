// Command pushpin-proxy is the proxy process: routes client requests to
// backends and hands GRIP holds to the handler.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/proxy"
)

func main() {
	if err := command().Execute(); err != nil {
		os.Exit(1)
	}
}

func command() *cobra.Command {
	var (
		configFile, logFile, logLevel, ipcPrefix string
		verbose, quietCheck                      bool
		routes                                   []string
	)
	cmd := &cobra.Command{
		Use:           "pushpin-proxy",
		Short:         "Pushpin proxy component.",
		Version:       "1.36.0",
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_ = quietCheck // we never check for updates
			var out io.Writer = os.Stderr
			if logFile != "" {
				f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
				if err != nil {
					fmt.Fprintln(os.Stderr, "pushpin-proxy:", err)
					return err
				}
				defer f.Close()
				out = f
			}
			level := configs.LevelInfo
			if verbose {
				level = configs.LevelDebug
			}
			if logLevel != "" {
				n, err := strconv.Atoi(logLevel)
				if err != nil {
					fmt.Fprintf(os.Stderr, "pushpin-proxy: --loglevel: %q is not a number\n", logLevel)
					return err
				}
				level = n
			}
			zerolog.TimeFieldFormat = time.RFC3339Nano
			log := zerolog.New(zerolog.ConsoleWriter{Out: out, NoColor: true, TimeFormat: "2006-01-02 15:04:05.000"}).
				Level(zlevel(level)).With().Timestamp().Logger()
			cfg, err := configs.Load(configs.Options{ConfigFile: configFile, IPCPrefix: ipcPrefix, Routes: routes})
			if err != nil {
				log.Error().Err(err).Msg("loading config")
				return err
			}
			for _, w := range cfg.Warnings {
				log.Warn().Str("warning", w).Msg("config")
			}
			p, err := proxy.New(cfg, log)
			if err != nil {
				log.Error().Err(err).Msg("starting proxy")
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if err := p.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error().Err(err).Msg("proxy stopped")
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "Config file.")
	f.StringVar(&logFile, "logfile", "", "File to log to.")
	f.StringVar(&logLevel, "loglevel", "", "Log level (default: 2).")
	f.BoolVar(&verbose, "verbose", false, "Verbose output. Same as --loglevel=3.")
	f.StringVar(&ipcPrefix, "ipc-prefix", "", "Override ipc_prefix config option.")
	f.StringArrayVar(&routes, "route", nil, "Add route (overrides routes file).")
	f.BoolVar(&quietCheck, "quiet-check", false, "Log update checks in Zurl as debug level.")
	return cmd
}

// zlevel maps Pushpin's numeric levels (0 error … 3 debug) to zerolog.
func zlevel(n int) zerolog.Level {
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
