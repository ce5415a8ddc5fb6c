// Command capture plays the peer of the real Pushpin 1.36 helper processes
// (condure, zurl) over ZeroMQ and records the raw zhttp frames exchanged, so
// our implementation's parsers and tests can be checked against bytes the
// reference actually produced. See README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	out := flag.String("out", "proto/zhttp/testdata", "directory receiving the .bin frames")
	only := flag.String("only", "condure,zurl", "comma-separated scenarios to run: condure, zurl")
	timeout := flag.Duration("timeout", 3*time.Minute, "overall deadline")
	keepAlive := flag.Bool("keepalive", true, "wait (up to ~50 s) for condure's batched keep-alive")
	keep := flag.Bool("keep", false, "keep the temp dir (process logs) for inspection")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	if err := run(ctx, *out, *only, *keepAlive, *keep); err != nil {
		log.Printf("capture: %v", err)
		cancel()
		stop()
		os.Exit(1) //nolint:gocritic // deferred calls already run above
	}
}

func run(ctx context.Context, out, only string, keepAlive, keep bool) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("creating output dir: %w", err)
	}
	tmp, err := os.MkdirTemp("", "pushpin-capture-")
	if err != nil {
		return fmt.Errorf("creating temp dir: %w", err)
	}
	if keep {
		log.Printf("keeping %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	for _, s := range strings.Split(only, ",") {
		switch strings.TrimSpace(s) {
		case "condure":
			if err := captureCondure(ctx, tmp, out, keepAlive); err != nil {
				return fmt.Errorf("condure: %w", err)
			}
		case "zurl":
			if err := captureZurl(ctx, tmp, out); err != nil {
				return fmt.Errorf("zurl: %w", err)
			}
		case "":
		default:
			return fmt.Errorf("unknown scenario %q", s)
		}
	}
	return nil
}
