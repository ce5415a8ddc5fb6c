package connmgr

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pushpin-go/pushpin/internal/cli"
	"github.com/pushpin-go/pushpin/internal/version"
)

// Command is the pushpin-connmgr command line: condure 1.9.1's flags, so
// the runner can start either program with the same arguments. Flags that
// only matter to condure's other modes are accepted and ignored.
func Command() *cobra.Command {
	var (
		cfg                   Config
		listens               []string
		logLevel, streamTO    int
		headerTO              int
		ipcMode               string
		ignoredInt            int
		ignoredStr            string
		ignoredList           []string
		ignoredBool, sizesOpt bool
	)
	cmd := &cobra.Command{
		Use:           "pushpin-connmgr",
		Short:         "HTTP connection manager (condure-compatible)",
		Version:       version.Condure,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f := cmd.Flags()
	f.StringVar(&cfg.ID, "id", "condure", "Instance ID")
	f.IntVar(&logLevel, "log-level", 2, "Log level (0 error … 3 debug)")
	f.StringArrayVar(&listens, "listen", []string{"0.0.0.0:8000,stream"}, "Port to listen on: [addr:]port[,params...] (repeatable)")
	f.StringArrayVar(&cfg.ZClient, "zclient-stream", nil, "ZeroMQ client PUSH/ROUTER/SUB spec base (repeatable)")
	f.BoolVar(&cfg.Connect, "zclient-connect", false, "ZeroMQ client sockets connect instead of bind")
	f.IntVar(&cfg.BufferSize, "buffer-size", DefaultBufferSize, "Connection buffer size (and initial zhttp credits)")
	f.IntVar(&cfg.MaxConn, "stream-maxconn", DefaultMaxConn, "Maximum concurrent connections in stream mode")
	f.IntVar(&streamTO, "stream-timeout", int(DefaultStreamTimeout/time.Second), "Client timeout in stream mode (seconds)")
	f.IntVar(&headerTO, "header-timeout", int(DefaultHeaderTimeout/time.Second), "Time a client has to send a request head, from connect or from the head's first byte (seconds, 0: none; not in condure)")
	f.StringVar(&ipcMode, "ipc-file-mode", "", "Permissions for ZeroMQ IPC binds (octal)")
	// condure flags without effect here.
	f.IntVar(&ignoredInt, "workers", 2, "Ignored (condure compatibility)")
	f.IntVar(&ignoredInt, "req-maxconn", 100, "Ignored (req mode)")
	f.IntVar(&ignoredInt, "req-timeout", 30, "Ignored (req mode)")
	f.IntVar(&ignoredInt, "body-buffer-size", 100000, "Ignored (req mode)")
	f.IntVar(&cfg.MessagesMax, "messages-max", DefaultMessagesMax, "Maximum WebSocket frames waiting to be written to a client")
	f.StringArrayVar(&ignoredList, "zclient-req", nil, "Ignored (req mode)")
	f.StringVar(&ignoredStr, "tls-identities-dir", ".", "Directory with certificates (TLS listeners not supported yet)")
	f.BoolVar(&cfg.Compression, "compression", false, "Offer permessage-deflate to WebSocket clients")
	f.BoolVar(&ignoredBool, "deny-out-internal", false, "Ignored")
	f.BoolVar(&sizesOpt, "sizes", false, "Print sizes of per-connection objects and exit")
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		// condure has only --log-level, and no log file to reopen. The
		// runner does not forward SIGHUP here (nor does Pushpin's to
		// condure); one sent by hand must not drop every connection.
		return cli.Serve("connmgr", cli.LogFlags{Level: strconv.Itoa(logLevel)}, func(log *cli.Log) (cli.Process, func(), error) {
			c.Flags().Visit(func(fl *pflag.Flag) {
				if strings.HasPrefix(fl.Usage, "Ignored") {
					log.Debug().Str("flag", fl.Name).Str("value", fl.Value.String()).Msg("ignored condure option")
				}
			})
			if sizesOpt {
				fmt.Fprintln(c.OutOrStdout(), Sizes())
				return nil, nil, nil
			}
			for _, l := range listens {
				ls, err := ParseListen(l)
				if err != nil {
					return nil, nil, err
				}
				cfg.Listen = append(cfg.Listen, ls)
			}
			cfg.StreamTimeout = time.Duration(streamTO) * time.Second
			cfg.HeaderTimeout = time.Duration(headerTO) * time.Second
			if headerTO <= 0 {
				cfg.HeaderTimeout = -1 // off
			}
			if ipcMode != "" {
				m, err := strconv.ParseUint(ipcMode, 8, 32)
				if err != nil {
					return nil, nil, fmt.Errorf("%w: --ipc-file-mode %q: not octal", ErrConfig, ipcMode)
				}
				cfg.IPCFileMode = uint32(m)
			}
			s, err := New(cfg, log.With().Str("component", "connmgr").Logger())
			return s, nil, err
		})
	}
	return cmd
}
