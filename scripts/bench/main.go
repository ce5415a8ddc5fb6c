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
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

var (
	allScenarios     = []string{"passthrough", "connect", "memory", "fanout", "channels", "rate", "burst", "ws-open", "ws-memory", "ws-rate", "scale"}
	defaultScenarios = "passthrough,connect,memory,fanout,channels,rate,burst,ws-open,ws-memory,ws-rate"
	fanoutModes      = []string{"stream", "sse", "ws"}
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == workerArg {
		os.Exit(workerMain())
	}
	os.Exit(run())
}

func run() int {
	var (
		target    = flag.String("target", "both", "both, ours or pushpin")
		scenarios = flag.String("scenarios", defaultScenarios, "comma-separated: "+strings.Join(allScenarios, ","))
		modes     = flag.String("modes", "stream,sse,ws", "fan-out modes at -subs: stream, sse, ws (WebSocket-over-HTTP sessions)")
		fanout    = flag.String("fanout", "", "fan-out runs as mode:subscribers pairs, e.g. stream:10000,sse:10000,stream:20000 (default: each of -modes at -subs)")
		interval  = flag.String("interval", "auto", "fan-out and scale: time between publishes; auto = 100µs per subscriber, 20ms..5s")
		launch    = flag.String("launch", "tiers", "tiers (start the four programs one by one) or runner (the target's pushpin runner)")
		repo      = flag.String("repo", ".", "repository root (bin/ and configs/internal.conf)")
		out       = flag.String("out", "", "results file (default scripts/bench/results/<date>.md under -repo; - for none)")
		verbose   = flag.Bool("v", false, "debug logs")
		rate      = flag.String("rate", "20x1000", "rate: runs of subscribers x msg/s, e.g. 20x1000,100x200")
		burst     = flag.String("burst", "100x20000", "burst: runs of subscribers x messages published back to back")
		extra     = flag.String("handler-conf", "", `extra [handler] lines for both targets, e.g. "message_rate=2500\nmessage_hwm=25000"`)
		opt       options
	)
	flag.IntVar(&opt.Subs, "subs", 1000, "held connections / subscribers / channels")
	flag.IntVar(&opt.Msgs, "msgs", 50, "fan-out: messages published to the one channel")
	flag.IntVar(&opt.ChanMsgs, "chan-msgs", 10, "channels: messages per channel")
	flag.IntVar(&opt.RateMsgs, "rate-msgs", 5000, "rate: messages published per run")
	flag.IntVar(&opt.Size, "size", 1024, "rate and burst: bytes per message")
	flag.IntVar(&opt.RateBatch, "rate-batch", 50, "rate and burst: items per publish request")
	flag.IntVar(&opt.WSSlow, "ws-slow", 1, "ws-rate: extra sessions that stop reading after the probe (a client that cannot keep up)")
	flag.IntVar(&opt.Conc, "conc", 50, "concurrent clients (passthrough) and dialers (holds)")
	flag.IntVar(&opt.PubConc, "pub-conc", 4, "channels: publish requests in flight")
	flag.IntVar(&opt.Batch, "batch", 100, "channels: items per publish request")
	flag.DurationVar(&opt.Duration, "duration", 5*time.Second, "passthrough: measured time, per target and for the direct run")
	flag.DurationVar(&opt.Drain, "drain", 15*time.Second, "how long to wait for the last deliveries before counting losses")
	flag.IntVar(&opt.ScaleSubs, "scale", 100000, "scale: held connections on one channel")
	flag.IntVar(&opt.ScaleMsgs, "scale-msgs", 3, "scale: messages published to them")
	flag.IntVar(&opt.ScaleConnMgrs, "scale-connmgrs", 6, "scale: our connection manager processes (Pushpin runs one condure)")
	flag.StringVar(&opt.ScaleLaunch, "scale-launch", "runner", "scale: tiers or runner (ours: [runner] connmgr_processes)")
	copts := clientOpts{}
	flag.IntVar(&copts.PerWorker, "per-worker", 15000, "held connections per client worker process (fd limit 20,000)")
	flag.IntVar(&copts.PerSrc, "per-src", 10000, "held connections per loopback source address (connect picks even ports first: keep below half the ephemeral range)")
	flag.IntVar(&copts.Loops, "client-loops", 1, "epoll loops (goroutines) per client worker process")
	flag.DurationVar(&copts.OpenTimeout, "open-timeout", 10*time.Second, "a hold not established within this failed")
	flag.DurationVar(&copts.Reach, "reach", time.Second, "deliveries within this are counted (\"delivered within\")")
	flag.Parse()

	lvl := zerolog.InfoLevel
	if *verbose {
		lvl = zerolog.DebugLevel
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05"}).Level(lvl).With().Timestamp().Logger()

	sel, err := parseList(*scenarios, allScenarios)
	if err == nil {
		opt.Fanout, err = parseFanout(*fanout, *modes, opt.Subs)
	}
	if err == nil {
		if opt.Rate, _, err = parseRate(*rate, false); err != nil {
			err = fmt.Errorf("-rate: %w", err)
		}
	}
	if err == nil {
		if opt.Burst, opt.BurstMsgs, err = parseRate(*burst, true); err != nil {
			err = fmt.Errorf("-burst: %w", err)
		}
	}
	if err == nil && (opt.RateMsgs < 1 || opt.Size < 1 || opt.RateBatch < 1) {
		err = fmt.Errorf("-rate-msgs, -size and -rate-batch must be at least 1")
	}
	if err == nil && *interval != "auto" {
		if opt.Interval, err = time.ParseDuration(*interval); err == nil && opt.Interval <= 0 {
			err = fmt.Errorf("-interval must be positive")
		}
	}
	if err == nil && (opt.Subs < 1 || opt.Msgs < 1 || opt.ChanMsgs < 1 || opt.Conc < 1 || opt.PubConc < 1 || opt.Batch < 1 ||
		opt.ScaleSubs < 1 || opt.ScaleMsgs < 1 || opt.ScaleConnMgrs < 1) {
		err = fmt.Errorf("-subs, -msgs, -chan-msgs, -conc, -pub-conc, -batch, -scale, -scale-msgs and -scale-connmgrs must be at least 1")
	}
	if err == nil && (copts.PerWorker < 1 || copts.PerWorker > 19000 || copts.PerSrc < 1 || copts.PerSrc > 28000) {
		err = fmt.Errorf("-per-worker must be 1..19000 and -per-src 1..28000")
	}
	if err == nil && opt.ScaleLaunch != "tiers" && opt.ScaleLaunch != "runner" {
		err = fmt.Errorf("-scale-launch: %q is not tiers or runner", opt.ScaleLaunch)
	}
	if err == nil {
		copts.Exe, err = os.Executable()
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
	// The targets inherit the raised limit; the holds are in the workers.
	raiseFdLimit(log)

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
	srcs := &srcPool{}
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
		e := &env{ctx: ctx, target: t, be: be, rep: rep, opt: opt, copts: copts, srcs: srcs,
			log: log.With().Str("target", t).Logger()}
		if !runTarget(e, bins, sc, sel) {
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
// stops it, then does the same for scale on a stack of its own; false if
// the target could not be measured at all.
func runTarget(e *env, bins programs, sc stackConfig, sel []string) bool {
	if sel = runFloor(e, sel); len(sel) == 0 {
		return true
	}
	has := func(s string) bool { return slices.Contains(sel, s) }
	ok := true
	if slices.ContainsFunc(sel, func(s string) bool { return s != "scale" }) {
		ok = withStack(e, bins, sc, "startup", func() {
			if has("passthrough") {
				step(e, "passthrough", func() error { return scenPassthrough(e) })
			}
			if has("connect") || has("memory") {
				step(e, "connect/memory", func() error { return scenHolds(e, has("connect"), has("memory")) })
			}
			if has("fanout") {
				for _, r := range e.opt.Fanout {
					step(e, fmt.Sprintf("fanout %s %d", r.Mode, r.Subs), func() error { return scenFanout(e, r) })
				}
			}
			if has("channels") {
				step(e, "channels", func() error { return scenChannels(e) })
			}
			if has("rate") {
				for _, r := range e.opt.Rate {
					step(e, fmt.Sprintf("rate %dx%d", r.Subs, r.Rate), func() error { return scenRate(e, r, e.opt.RateMsgs, false) })
				}
			}
			if has("burst") {
				for i, r := range e.opt.Burst {
					k := e.opt.BurstMsgs[i]
					step(e, fmt.Sprintf("burst %dx%d", r.Subs, k), func() error { return scenRate(e, r, k, false) })
				}
			}
			if has("ws-open") {
				step(e, "ws-open", func() error { return scenWSOpen(e) })
			}
			if has("ws-memory") {
				step(e, "ws-memory", func() error { return scenWSMemory(e) })
			}
			if has("ws-rate") {
				for _, r := range e.opt.Rate {
					step(e, fmt.Sprintf("ws-rate %dx%d", r.Subs, r.Rate), func() error { return scenRate(e, r, e.opt.RateMsgs, true) })
				}
			}
		})
	}
	if has("scale") && e.ctx.Err() == nil {
		sc.launch = e.opt.ScaleLaunch
		if e.target == targetOurs {
			sc.connMgrs = e.opt.ScaleConnMgrs
		}
		ok = withStack(e, bins, sc, "scale startup", func() {
			step(e, "scale", func() error { return scenScale(e) })
		}) && ok
	}
	return ok
}

// withStack starts the target, runs fn against it and stops it; false if it
// did not start (reported as scenario name).
func withStack(e *env, bins programs, sc stackConfig, name string, fn func()) bool {
	e.log.Info().Str("launch", sc.launch).Int("connmgrs", max(sc.connMgrs, 1)).Msg("starting")
	st, err := startStack(e.ctx, e.target, bins, sc)
	if err != nil {
		e.log.Error().Err(err).Msg("target did not start")
		var se *startError
		if errors.As(err, &se) {
			fmt.Fprintln(os.Stderr, se.outputs)
		}
		e.rep.fail(e.target, name, err)
		return false
	}
	defer st.stop()
	e.st = st
	fn()
	return true
}

// step runs one scenario against a live target, recording its error.
func step(e *env, name string, fn func() error) {
	if e.ctx.Err() != nil {
		return
	}
	if err := e.st.alive(); err != nil {
		e.rep.fail(e.target, name, err)
		return
	}
	e.waitIdle()
	e.log.Info().Str("scenario", name).Msg("running")
	t0 := time.Now()
	err := fn()
	// A scenario that failed half-way may have left WebSocket sessions to end.
	e.wsSettle("", "")
	if err != nil {
		e.log.Error().Err(err).Str("scenario", name).Msg("failed")
		e.rep.fail(e.target, name, err)
		return
	}
	e.log.Info().Str("scenario", name).Str("took", time.Since(t0).Round(time.Millisecond).String()).Msg("done")
}

// parseFanout reads -fanout ("mode:subs,…"), or builds it from -modes at subs.
func parseFanout(spec, modes string, subs int) ([]fanoutRun, error) {
	if spec == "" {
		ms, err := parseList(modes, fanoutModes)
		if err != nil {
			return nil, fmt.Errorf("-modes: %w", err)
		}
		out := make([]fanoutRun, len(ms))
		for i, m := range ms {
			out[i] = fanoutRun{Mode: m, Subs: subs}
		}
		return out, nil
	}
	var out []fanoutRun
	for _, f := range strings.Split(spec, ",") {
		m, n, ok := strings.Cut(strings.TrimSpace(f), ":")
		v, err := strconv.Atoi(n)
		if !ok || err != nil || v < 1 || !slices.Contains(fanoutModes, m) {
			return nil, fmt.Errorf("-fanout: %q is not mode:subscribers (modes %s)", f, strings.Join(fanoutModes, ","))
		}
		out = append(out, fanoutRun{Mode: m, Subs: v})
	}
	return out, nil
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
