// Command pushpin-zurl makes the backend HTTP requests the proxy asks for
// over zhttp (Pushpin's zurl).
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/pushpin-go/pushpin/cmd/internal/cli"
	"github.com/pushpin-go/pushpin/cmd/internal/sysmon"
	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/zurl"
)

func main() {
	sysmon.Reexec()
	zurl.LimitProcs()
	if err := command().Execute(); err != nil {
		os.Exit(1)
	}
}

func command() *cobra.Command {
	var configFile, logFile, logLevel string
	var verbose bool
	cmd := &cobra.Command{
		Use:           "pushpin-zurl",
		Short:         "HTTP client worker over zhttp (zurl).",
		Version:       "1.11.1",
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(*cobra.Command, []string) error {
			hup := cli.CatchHangup()
			defer hup.Stop()
			log, err := cli.Logger(logFile, logLevel, verbose)
			if err != nil {
				fmt.Fprintln(os.Stderr, "pushpin-zurl:", err)
				return err
			}
			defer log.Close()
			cfg, err := configs.LoadZurlConf(configFile)
			if err != nil {
				log.Error().Err(err).Msg("loading config")
				return err
			}
			s, err := zurl.New(cfg, log.With().Str("component", "zurl").Logger())
			if err != nil {
				log.Error().Err(err).Msg("starting zurl")
				return err
			}
			ctx, stop := cli.SignalContext()
			defer stop()
			// SIGHUP rotates the log and re-reads the config.
			go hup.Serve(ctx, log, func() {
				next, err := configs.LoadZurlConf(configFile)
				if err == nil {
					err = s.Reload(next)
				}
				if err != nil {
					log.Error().Err(err).Msg("reload failed, keeping the current config")
				}
			})
			return s.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "/etc/zurl.conf", "Config file.")
	f.StringVar(&logFile, "logfile", "", "File to log to.")
	f.StringVar(&logLevel, "loglevel", "", "Log level (default: 2).")
	f.BoolVar(&verbose, "verbose", false, "Verbose output.")
	return cmd
}
