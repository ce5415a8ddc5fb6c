package runner

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// Serve runs r with Pushpin's signal handling: the first SIGINT/SIGTERM
// stops every child cleanly, a second one kills them at once; SIGHUP is
// forwarded to proxy, handler and zurl and calls onHUP (log reopening; may
// be nil).
func Serve(ctx context.Context, r *Runner, onHUP func()) error {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	stopping := false
	for {
		select {
		case err := <-errc:
			return err
		case sig := <-sigs:
			switch {
			case sig == syscall.SIGHUP:
				if onHUP != nil {
					onHUP()
				}
				r.Reload()
			case stopping:
				r.log.Warn().Str("signal", sig.String()).Msg("second signal: killing services")
				r.Kill()
			default:
				stopping = true
				cancel()
			}
		}
	}
}
