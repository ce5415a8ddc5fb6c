// Command bench is the project's side-by-side load tool: it starts our stack
// and, when Debian's pushpin package is installed, Pushpin 1.36 with the same
// backend, config and load, and prints both figures and their ratio.
// See README.md.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

var allScenarios = []string{"passthrough", "connect", "memory", "fanout", "channels"}

func main() {
	os.Exit(run())
}

func run() int {
	var (
		target    = flag.String("target", "both", "both, ours or pushpin")
		scenarios = flag.String("scenarios", strings.Join(allScenarios, ","), "comma-separated: "+strings.Join(allScenarios, ","))
		modes     = flag.String("modes", "stream,sse", "fan-out modes: stream, sse")
		launch    = flag.String("launch", "tiers", "tiers (start the four programs one by one) or runner (the target's pushpin runner)")
		repo      = flag.String("repo", ".", "repository root (bin/ and configs/internal.conf)")
		out       = flag.String("out", "", "results file (default scripts/bench/results/<date>.md under -repo; - for none)")
		verbose   = flag.Bool("v", false, "debug logs")
		extra     = flag.String("handler-conf", "", `extra [handler] lines for both targets, e.g. "message_rate=2500\nmessage_hwm=25000"`)
		opt       options
	)
	flag.IntVar(&opt.Subs, "subs", 1000, "held connections / subscribers / channels")
	flag.IntVar(&opt.Msgs, "msgs", 50, "fan-out: messages published to the one channel")
	flag.IntVar(&opt.ChanMsgs, "chan-msgs", 10, "channels: messages per channel")
	flag.IntVar(&opt.Conc, "conc", 50, "concurrent clients (passthrough) and dialers (holds)")
	flag.IntVar(&opt.PubConc, "pub-conc", 4, "channels: publish requests in flight")
	flag.IntVar(&opt.Batch, "batch", 100, "channels: items per publish request")
	flag.DurationVar(&opt.Duration, "duration", 5*time.Second, "passthrough: measured time, per target and for the direct run")
	flag.DurationVar(&opt.Interval, "interval", 20*time.Millisecond, "fan-out: time between publishes")
	flag.DurationVar(&opt.Drain, "drain", 15*time.Second, "how long to wait for the last deliveries before counting losses")
	flag.Parse()

	lvl := zerolog.InfoLevel
	if *verbose {
		lvl = zerolog.DebugLevel
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05"}).Level(lvl).With().Timestamp().Logger()

	sel, err := parseList(*scenarios, allScenarios)
	if err == nil {
		opt.Modes, err = parseList(*modes, []string{"stream", "sse"})
	}
	if err == nil && (opt.Subs < 1 || opt.Msgs < 1 || opt.ChanMsgs < 1 || opt.Conc < 1 || opt.PubConc < 1 || opt.Batch < 1) {
		err = fmt.Errorf("-subs, -msgs, -chan-msgs, -conc, -pub-conc and -batch must be at least 1")
	}
	var targets []string
	switch *target {
	case "both":
		targets = []string{targetPushpin, targetOurs}
	case targetOurs, targetPushpin:
		targets = []string{*target}
	default:
		err = fmt.Errorf("-target: %q is not both, ours or pushpin", *target)
	}
	if *launch != "tiers" && *launch != "runner" {
		err = fmt.Errorf("-launch: %q is not tiers or runner", *launch)
	}
	if err != nil {
		log.Error().Err(err).Msg("bad flags")
		return 2
	}
	// Each hold is one fd here; the HTTP clients and the backend need a few more.
	if limit := raiseFdLimit(log); limit > 0 && uint64(opt.Subs)+200 > limit {
		log.Error().Int("subs", opt.Subs).Uint64("nofile", limit).Msg("-subs needs more file descriptors than the hard limit allows")
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	internal, err := readInternalConf(*repo)
	if err != nil {
		log.Error().Err(err).Msg("config")
		return 1
	}
	be, err := startBackend()
	if err != nil {
		log.Error().Err(err).Msg("backend")
		return 1
	}
	defer be.close()
	sc := stackConfig{launch: *launch, internal: internal, backendAddr: be.addr(),
		extraConf: strings.ReplaceAll(*extra, `\n`, "\n") + "\n"}

	rep := newReport()
	began := time.Now()
	failed := false
	for _, t := range targets {
		if ctx.Err() != nil {
			break
		}
		bins := realBins
		if t == targetOurs {
			bins = oursBins(*repo)
		}
		if *target == "both" && t == targetPushpin && bins.missing(*launch) != "" {
			log.Warn().Str("missing", bins.missing(*launch)).Msg("Pushpin 1.36 not installed (scripts/deps.sh --pushpin): measuring ours only")
			continue
		}
		if !runTarget(ctx, t, bins, sc, be, rep, opt, sel, log) {
			failed = true
		}
	}

	var buf bytes.Buffer
	rep.markdown(&buf)
	os.Stdout.Write(buf.Bytes())
	if *out != "-" {
		path := *out
		if path == "" {
			path = filepath.Join(*repo, "scripts", "bench", "results", began.Format("2006-01-02-150405")+".md")
		}
		if err := writeResults(path, began, os.Args[1:], rep, buf.Bytes()); err != nil {
			log.Error().Err(err).Msg("results file")
			return 1
		}
		log.Info().Str("file", path).Msg("results written")
	}
	if failed || len(rep.errors) > 0 || ctx.Err() != nil {
		return 1
	}
	return 0
}

// runTarget starts one target, runs the selected scenarios against it and
// stops it; false if the target could not be measured at all.
func runTarget(ctx context.Context, t string, bins programs, sc stackConfig, be *backend, rep *report,
	opt options, sel []string, log zerolog.Logger) bool {
	log = log.With().Str("target", t).Logger()
	log.Info().Msg("starting")
	st, err := startStack(ctx, t, bins, sc)
	if err != nil {
		log.Error().Err(err).Msg("target did not start")
		var se *startError
		if errors.As(err, &se) {
			fmt.Fprintln(os.Stderr, se.outputs)
		}
		rep.fail(t, "startup", err)
		return false
	}
	defer st.stop()
	e := &env{ctx: ctx, target: t, st: st, be: be, rep: rep, opt: opt, log: log}
	has := func(s string) bool {
		for _, x := range sel {
			if x == s {
				return true
			}
		}
		return false
	}
	step := func(name string, fn func() error) {
		if ctx.Err() != nil {
			return
		}
		if err := st.alive(); err != nil {
			rep.fail(t, name, err)
			return
		}
		log.Info().Str("scenario", name).Msg("running")
		t0 := time.Now()
		if err := fn(); err != nil {
			log.Error().Err(err).Str("scenario", name).Msg("failed")
			rep.fail(t, name, err)
			return
		}
		log.Info().Str("scenario", name).Str("took", time.Since(t0).Round(time.Millisecond).String()).Msg("done")
	}
	if has("passthrough") {
		step("passthrough", func() error { return scenPassthrough(e) })
	}
	if has("connect") || has("memory") {
		step("connect/memory", func() error { return scenHolds(e, has("connect"), has("memory")) })
	}
	if has("fanout") {
		for _, m := range opt.Modes {
			step("fanout "+m, func() error { return scenFanout(e, m) })
		}
	}
	if has("channels") {
		step("channels", func() error { return scenChannels(e) })
	}
	return true
}

// parseList splits a comma-separated flag and checks every entry is known.
func parseList(s string, known []string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		ok := false
		for _, k := range known {
			ok = ok || k == f
		}
		if !ok {
			return nil, fmt.Errorf("%q is not one of %s", f, strings.Join(known, ","))
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty list")
	}
	return out, nil
}

// raiseFdLimit lifts the soft fd limit to the hard one. Setting it
// explicitly (rather than relying on Go's automatic raise) also makes the
// started targets inherit it, which they need for thousands of holds.
// It returns the soft limit in force (0 if unknown).
func raiseFdLimit(log zerolog.Logger) uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		log.Warn().Err(err).Msg("getrlimit")
		return 0
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		log.Warn().Err(err).Msg("setrlimit")
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	log.Debug().Uint64("nofile", rl.Cur).Msg("fd limit")
	return rl.Cur
}

// writeResults writes the results file: when, where, how, then the table.
func writeResults(path string, began time.Time, args []string, rep *report, table []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("results dir: %w", err)
	}
	var b bytes.Buffer
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "# Benchmark %s\n\n", began.Format(time.RFC3339))
	fmt.Fprintf(&b, "- command: `go run ./scripts/bench %s`\n", strings.Join(args, " "))
	fmt.Fprintf(&b, "- host: %s, %d CPUs, %s/%s, took %s\n\n", host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH,
		time.Since(began).Round(time.Second))
	b.Write(table)
	if len(rep.errors) > 0 {
		fmt.Fprintf(&b, "\n## Errors\n\n")
		for _, e := range rep.errors {
			fmt.Fprintf(&b, "- %s\n", strings.ReplaceAll(e, "\n", "\n  "))
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
