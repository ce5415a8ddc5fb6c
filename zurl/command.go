package zurl

import (
	"github.com/spf13/cobra"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/internal/cli"
	"github.com/pushpin-go/pushpin/internal/version"
)

// Command is the pushpin-zurl command line: zurl's flags.
func Command() *cobra.Command {
	var configFile, logFile, logLevel string
	var verbose bool
	cmd := &cobra.Command{
		Use:           "pushpin-zurl",
		Short:         "HTTP client worker over zhttp (zurl).",
		Version:       version.Zurl,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(*cobra.Command, []string) error {
			LimitProcs()
			hup := cli.CatchHangup()
			defer hup.Stop()
			log, err := cli.Logger(logFile, logLevel, verbose)
			if err != nil {
				return err
			}
			defer log.Close()
			cfg, err := configs.LoadZurlConf(configFile)
			if err != nil {
				log.Error().Err(err).Msg("loading config")
				return cli.Logged(err)
			}
			s, err := New(cfg, log.With().Str("component", "zurl").Logger())
			if err != nil {
				log.Error().Err(err).Msg("starting zurl")
				return cli.Logged(err)
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
