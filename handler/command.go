package handler

import (
	"github.com/spf13/cobra"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/internal/cli"
	"github.com/pushpin-go/pushpin/internal/version"
)

// Command is the pushpin-handler command line: Pushpin's handler flags.
func Command() *cobra.Command {
	var (
		configFile, ipcPrefix string
		portOffset            int
		logs                  cli.LogFlags
	)
	cmd := &cobra.Command{
		Use:           "pushpin-handler",
		Short:         "Pushpin handler component.",
		Version:       version.Pushpin,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Pushpin's handler has nothing to reload: SIGHUP rotates its log.
			return cli.Serve("handler", logs, func(log *cli.Log) (cli.Process, func(), error) {
				opts := configs.Options{ConfigFile: configFile, IPCPrefix: ipcPrefix}
				if cmd.Flags().Changed("port-offset") {
					opts.PortOffset = &portOffset
				}
				cfg, err := configs.Load(opts)
				if err != nil {
					return nil, nil, err
				}
				h, err := New(cfg, log.With().Str("component", "handler").Logger())
				return h, nil, err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "Config file.")
	logs.Add(f)
	f.StringVar(&ipcPrefix, "ipc-prefix", "", "Override ipc_prefix config option.")
	f.IntVar(&portOffset, "port-offset", 0, "Override port_offset config option.")
	return cmd
}
