package proxy

import (
	"github.com/spf13/cobra"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/internal/cli"
	"github.com/pushpin-go/pushpin/internal/version"
)

// Command is the pushpin-proxy command line: Pushpin's proxy flags.
func Command() *cobra.Command {
	var (
		configFile, ipcPrefix string
		quietCheck            bool
		routes                []string
		logs                  cli.LogFlags
	)
	cmd := &cobra.Command{
		Use:           "pushpin-proxy",
		Short:         "Pushpin proxy component.",
		Version:       version.Pushpin,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(*cobra.Command, []string) error {
			_ = quietCheck // we never check for updates
			return cli.Serve("proxy", logs, func(log *cli.Log) (cli.Process, func(), error) {
				cfg, err := configs.Load(configs.Options{ConfigFile: configFile, IPCPrefix: ipcPrefix, Routes: routes})
				if err != nil {
					return nil, nil, err
				}
				for _, w := range cfg.Warnings {
					log.Warn().Str("warning", w).Msg("config")
				}
				p, err := New(cfg, log.Logger)
				if err != nil {
					return nil, nil, err
				}
				// SIGHUP rotates the log and reloads the routes file
				// (ReloadRoutes logs what it did).
				return p, func() { _ = p.ReloadRoutes() }, nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "Config file.")
	logs.Add(f)
	f.StringVar(&ipcPrefix, "ipc-prefix", "", "Override ipc_prefix config option.")
	f.StringArrayVar(&routes, "route", nil, "Add route (overrides routes file).")
	f.BoolVar(&quietCheck, "quiet-check", false, "Log update checks in Zurl as debug level.")
	return cmd
}
