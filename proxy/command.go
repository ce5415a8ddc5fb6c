package proxy

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/internal/cli"
	"github.com/pushpin-go/pushpin/internal/version"
)

// Command is the pushpin-proxy command line: Pushpin's proxy flags.
func Command() *cobra.Command {
	var (
		configFile, logFile, logLevel, ipcPrefix string
		verbose, quietCheck                      bool
		routes                                   []string
	)
	cmd := &cobra.Command{
		Use:           "pushpin-proxy",
		Short:         "Pushpin proxy component.",
		Version:       version.Pushpin,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_ = quietCheck // we never check for updates
			hup := cli.CatchHangup()
			defer hup.Stop()
			log, err := cli.Logger(logFile, logLevel, verbose)
			if err != nil {
				return err
			}
			defer log.Close()
			cfg, err := configs.Load(configs.Options{ConfigFile: configFile, IPCPrefix: ipcPrefix, Routes: routes})
			if err != nil {
				log.Error().Err(err).Msg("loading config")
				return cli.Logged(err)
			}
			for _, w := range cfg.Warnings {
				log.Warn().Str("warning", w).Msg("config")
			}
			p, err := New(cfg, log.Logger)
			if err != nil {
				log.Error().Err(err).Msg("starting proxy")
				return cli.Logged(err)
			}
			ctx, stop := cli.SignalContext()
			defer stop()
			// SIGHUP rotates the log and reloads the routes file.
			go hup.Serve(ctx, log, func() { _ = p.ReloadRoutes() })
			if err := p.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error().Err(err).Msg("proxy stopped")
				return cli.Logged(err)
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
