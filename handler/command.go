package handler

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/internal/cli"
	"github.com/pushpin-go/pushpin/internal/version"
)

// Command is the pushpin-handler command line: Pushpin's handler flags.
func Command() *cobra.Command {
	var (
		configFile, logFile, logLevel, ipcPrefix string
		verbose                                  bool
		portOffset                               int
	)
	cmd := &cobra.Command{
		Use:           "pushpin-handler",
		Short:         "Pushpin handler component.",
		Version:       version.Pushpin,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hup := cli.CatchHangup()
			defer hup.Stop()
			log, err := cli.Logger(logFile, logLevel, verbose)
			if err != nil {
				return err
			}
			defer log.Close()
			opts := configs.Options{ConfigFile: configFile, IPCPrefix: ipcPrefix}
			if cmd.Flags().Changed("port-offset") {
				opts.PortOffset = &portOffset
			}
			cfg, err := configs.Load(opts)
			if err != nil {
				log.Error().Err(err).Msg("loading config")
				return cli.Logged(err)
			}
			h, err := New(cfg, log.With().Str("component", "handler").Logger())
			if err != nil {
				log.Error().Err(err).Msg("starting handler")
				return cli.Logged(err)
			}
			ctx, stop := cli.SignalContext()
			defer stop()
			// Pushpin's handler has nothing to reload: SIGHUP rotates its log.
			go hup.Serve(ctx, log, nil)
			if err := h.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error().Err(err).Msg("handler stopped")
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
	f.IntVar(&portOffset, "port-offset", 0, "Override port_offset config option.")
	return cmd
}
