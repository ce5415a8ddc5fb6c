package zurl

import (
	"github.com/spf13/cobra"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/internal/cli"
	"github.com/pushpin-go/pushpin/internal/version"
)

// Command is the pushpin-zurl command line: zurl's flags.
func Command() *cobra.Command {
	var (
		configFile string
		logs       cli.LogFlags
	)
	cmd := &cobra.Command{
		Use:           "pushpin-zurl",
		Short:         "HTTP client worker over zhttp (zurl).",
		Version:       version.Zurl,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(*cobra.Command, []string) error {
			LimitProcs()
			return cli.Serve("zurl", logs, func(log *cli.Log) (cli.Process, func(), error) {
				cfg, err := configs.LoadZurlConf(configFile)
				if err != nil {
					return nil, nil, err
				}
				s, err := New(cfg, log.With().Str("component", "zurl").Logger())
				if err != nil {
					return nil, nil, err
				}
				// SIGHUP rotates the log and re-reads the config.
				return s, func() {
					next, err := configs.LoadZurlConf(configFile)
					if err == nil {
						err = s.Reload(next)
					}
					if err != nil {
						log.Error().Err(err).Msg("reload failed, keeping the current config")
					}
				}, nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "/etc/zurl.conf", "Config file.")
	logs.Add(f)
	return cmd
}
