// Command pushpin-handler is the handler process: held sessions, channel
// subscriptions and the publish inputs.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/pushpin-go/pushpin/cmd/internal/cli"
	"github.com/pushpin-go/pushpin/cmd/internal/sysmon"
	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/handler"
)

func main() {
	sysmon.Reexec()
	if err := command().Execute(); err != nil {
		os.Exit(1)
	}
}

func command() *cobra.Command {
	var (
		configFile, logFile, logLevel, ipcPrefix string
		verbose                                  bool
		portOffset                               int
	)
	cmd := &cobra.Command{
		Use:           "pushpin-handler",
		Short:         "Pushpin handler component.",
		Version:       "1.36.0",
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hup := cli.CatchHangup()
			defer hup.Stop()
			log, err := cli.Logger(logFile, logLevel, verbose)
			if err != nil {
				fmt.Fprintln(os.Stderr, "pushpin-handler:", err)
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
				return err
			}
			h, err := handler.New(cfg, log.With().Str("component", "handler").Logger())
			if err != nil {
				log.Error().Err(err).Msg("starting handler")
				return err
			}
			ctx, stop := cli.SignalContext()
			defer stop()
			// Pushpin's handler has nothing to reload: SIGHUP rotates its log.
			go hup.Serve(ctx, log, nil)
			if err := h.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error().Err(err).Msg("handler stopped")
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
	f.IntVar(&portOffset, "port-offset", 0, "Override port_offset config option.")
	return cmd
}
