// Command pushpin-connmgr is the connection manager (Pushpin's condure). It
// accepts condure's command line, so the runner can start either.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pushpin-go/pushpin/cmd/internal/cli"
	"github.com/pushpin-go/pushpin/connmgr"
)

func main() {
	if err := command().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "pushpin-connmgr:", err)
		os.Exit(1)
	}
}

func command() *cobra.Command {
	var (
		cfg              connmgr.Config
		listens, ignored []string
		logLevel         int
	)
	cmd := &cobra.Command{
		Use:           "pushpin-connmgr",
		Short:         "Client connection manager (condure-compatible).",
		Version:       "1.9.1",
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(*cobra.Command, []string) error {
			log, closeLog, err := cli.Logger("", strconv.Itoa(logLevel), false)
			if err != nil {
				return err
			}
			defer closeLog()
			for _, l := range listens {
				parts := strings.Split(l, ",")
				opts := parts[1:]
				skip := false
				for _, o := range opts {
					if o == "tls" || o == "local" || strings.HasPrefix(o, "default-cert") {
						log.Warn().Str("listen", l).Msg("TLS and local listeners are not supported yet; skipped")
						skip = true
					}
				}
				if !skip {
					cfg.Listen = append(cfg.Listen, parts[0])
				}
			}
			for _, f := range ignored {
				log.Debug().Str("flag", f).Msg("ignored condure option")
			}
			s, err := connmgr.New(cfg, log.With().Str("component", "connmgr").Logger())
			if err != nil {
				return err
			}
			ctx, stop := cli.SignalContext()
			defer stop()
			return s.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.ID, "id", "condure", "Instance ID.")
	f.IntVar(&logLevel, "log-level", 2, "Log level.")
	f.StringArrayVar(&listens, "listen", nil, "Listen on <addr:port>,stream[,…] (repeatable).")
	f.StringVar(&cfg.ZClient, "zclient-stream", "", "ZeroMQ base spec for the zhttp client sockets.")
	f.BoolVar(&cfg.Connect, "zclient-connect", false, "Connect the zhttp sockets instead of binding.")
	f.IntVar(&cfg.BufferSize, "buffer-size", 8192, "Per-connection buffer size (initial credits).")
	f.IntVar(&cfg.MaxConn, "stream-maxconn", 50000, "Maximum client connections.")
	// Accepted for condure compatibility.
	var n int
	var s string
	f.IntVar(&n, "workers", 2, "Ignored (condure compatibility).")
	f.IntVar(&n, "req-maxconn", 100, "Ignored (condure compatibility).")
	f.IntVar(&n, "stream-timeout", 1800, "Ignored (condure compatibility).")
	f.StringVar(&s, "tls-identities-dir", "", "Ignored (TLS listeners not supported yet).")
	f.StringVar(&s, "zserver-req", "", "Ignored (condure compatibility).")
	f.StringVar(&s, "zserver-stream", "", "Ignored (condure compatibility).")
	f.BoolVar(new(bool), "compression", false, "Ignored (condure compatibility).")
	f.BoolVar(new(bool), "deny-out-internal", false, "Ignored (condure compatibility).")
	f.StringVar(&s, "sizes", "", "Ignored (condure compatibility).")
	f.StringVar(&s, "zclient-req", "", "Ignored (condure compatibility).")
	_ = ignored
	return cmd
}
