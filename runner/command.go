package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/configs/routing"
	"github.com/pushpin-go/pushpin/internal/logfmt"
	"github.com/pushpin-go/pushpin/internal/version"
)

// flags are the runner's command-line options (Pushpin's, plus
// --check-config).
type flags struct {
	config      string
	port        string
	routes      []string
	id          int
	mergeOutput bool
	logFile     string
	logLevel    string
	verbose     bool
	version     bool
	checkConfig bool
}

// Command is the `pushpin` command line, writing to stdout and stderr.
func Command() *cobra.Command { return NewCommand(os.Stdout, os.Stderr) }

// NewCommand returns the `pushpin` command. Output from the runner and
// (merged) children goes to stdout.
func NewCommand(stdout, stderr io.Writer) *cobra.Command {
	var f flags
	cmd := &cobra.Command{
		Use:   "pushpin",
		Short: "Pushpin-compatible GRIP reverse proxy: starts and supervises its services",
		Long: "pushpin starts the services listed in [runner] services of pushpin.conf " +
			"(connection manager, zurl, pushpin-proxy, pushpin-handler) and supervises them.",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.version {
				fmt.Fprintf(stdout, "pushpin %s (pushpin-go)\n", version.Pushpin)
				return nil
			}
			return run(cmd.Context(), cmd, f, stdout)
		},
	}
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "config file (default: ./configs/pushpin.conf, ./config/pushpin.conf, ./pushpin.conf, ./examples/config/pushpin.conf, /etc/pushpin/pushpin.conf)")
	fl.StringVar(&f.port, "port", "", "[addr:]port to listen on, replacing the configured listeners")
	fl.StringArrayVar(&f.routes, "route", nil, "route line, repeatable; replaces the routes file")
	fl.IntVar(&f.id, "id", 0, "instance id: ipc and file prefix p<id>-, port offset id*10")
	fl.BoolVarP(&f.mergeOutput, "merge-output", "m", false, "write the services' output to the runner's, each line labelled")
	fl.StringVar(&f.logFile, "logfile", "", "file for the runner's own log (default stdout)")
	fl.StringVar(&f.logLevel, "loglevel", "", "log level: N and/or service:N items, comma separated (0 error .. 3 debug)")
	fl.BoolVar(&f.verbose, "verbose", false, "log level 3 for the runner and every service")
	fl.BoolVar(&f.version, "version", false, "print the version and exit")
	fl.BoolVar(&f.checkConfig, "check-config", false, "validate the configuration (config, routes, programs) and exit")
	return cmd
}

func run(ctx context.Context, cmd *cobra.Command, f flags, stdout io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	opts := configs.Options{ConfigFile: f.config, LogLevel: f.logLevel, Port: f.port}
	if cmd.Flags().Changed("id") {
		id := f.id
		opts.ID = &id
	}
	if len(f.routes) > 0 {
		opts.Routes = f.routes
	}
	if opts.ConfigFile == "" {
		p, err := configs.FindConfigFile("")
		if err != nil {
			return err
		}
		opts.ConfigFile = p
	}
	if abs, err := filepath.Abs(opts.ConfigFile); err == nil {
		opts.ConfigFile = abs
	}
	cfg, err := configs.Load(opts)
	if err != nil {
		return err
	}
	plan := Plan{ConfigFile: opts.ConfigFile, MergeOutput: f.mergeOutput, ExeDir: exeDir(), ID: opts.ID, Verbose: f.verbose}
	level := cfg.Runner.LogLevels.For(configs.ServiceRunner)
	if f.verbose {
		level = configs.LevelDebug
	}

	logOut := stdout
	var lf *logfmt.LogFile
	if f.logFile != "" && !f.checkConfig {
		if lf, err = logfmt.OpenLogFile(f.logFile); err != nil {
			return err
		}
		defer lf.Close()
		logOut = lf
	}
	log := logfmt.NewLogger(logOut, level)

	if f.checkConfig {
		return checkConfig(cfg, plan, stdout)
	}
	for _, w := range cfg.Warnings {
		log.Warn().Msg(w)
	}
	r, err := New(cfg, Options{Plan: plan, Output: stdout}, log)
	if err != nil {
		return err
	}
	var onHUP func()
	if lf != nil {
		onHUP = func() {
			if err := lf.Reopen(); err != nil {
				log.Error().Err(err).Msg("reopening log file")
			}
		}
	}
	return Serve(ctx, r, onHUP)
}

// checkConfig runs the same loading, planning and routes parsing as a real
// start, reporting every problem, and prints the planned command lines.
func checkConfig(cfg *configs.Config, plan Plan, stdout io.Writer) error {
	var errs []error
	svcs, err := plan.Services(cfg)
	if err != nil {
		errs = append(errs, err)
	}
	if cfg.HasService(configs.ServiceProxy) {
		var rerrs []error
		if cfg.Routes != nil {
			_, rerrs = routing.ParseLines("--route", cfg.Routes)
		} else {
			_, rerrs = routing.Load(cfg.Proxy.RoutesFile)
		}
		errs = append(errs, rerrs...)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	r := &Runner{cfg: cfg, services: svcs}
	for _, w := range r.Warnings() {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	for _, s := range svcs {
		fmt.Fprintf(stdout, "%s: %s", s.Name, s.Path)
		for _, a := range s.Args {
			fmt.Fprintf(stdout, " %s", a)
		}
		fmt.Fprintln(stdout)
	}
	fmt.Fprintf(stdout, "config OK: %s\n", cfg.File)
	return nil
}

// exeDir is the directory of the running executable (bin/), where our other
// programs are looked up first.
func exeDir() string {
	p, err := os.Executable()
	if err != nil {
		return ""
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	return filepath.Dir(p)
}
