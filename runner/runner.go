// Package runner is Pushpin's `pushpin` program: it starts the services
// listed in [runner] services (connection manager, zurl, proxy, handler) as
// separate processes with the command lines Pushpin 1.36's runner builds,
// and supervises them.
package runner

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/configs"
)

// DefaultStopTimeout is how long children get to exit after SIGTERM before
// they are killed.
const DefaultStopTimeout = 5 * time.Second

// Options configure a Runner beyond pushpin.conf.
type Options struct {
	Plan
	// Output receives children's output when they do not log to files
	// (merge-output or no logdir). Nil means os.Stdout.
	Output io.Writer
	// StopTimeout overrides DefaultStopTimeout.
	StopTimeout time.Duration
	// Env is the children's environment; nil means the runner's.
	Env []string
}

// Runner starts and supervises the children. Run owns the child list; the
// mutex only guards it against Reload and Kill called from the signal
// goroutine.
type Runner struct {
	cfg      *configs.Config
	opts     Options
	log      zerolog.Logger
	services []Service

	mu       sync.Mutex
	children []*child
	killOnce sync.Once
	kill     chan struct{}
}

// New plans the services for cfg (resolving every executable) without
// starting anything.
func New(cfg *configs.Config, opts Options, log zerolog.Logger) (*Runner, error) {
	svcs, err := opts.Plan.Services(cfg)
	if err != nil {
		return nil, err
	}
	if opts.Output == nil {
		opts.Output = os.Stdout
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = DefaultStopTimeout
	}
	return &Runner{cfg: cfg, opts: opts, log: log, services: svcs, kill: make(chan struct{})}, nil
}

// Services returns the planned children (command lines included).
func (r *Runner) Services() []Service { return slices.Clone(r.services) }

// Warnings lists configuration that will start but not fully work.
func (r *Runner) Warnings() []string {
	var w []string
	c := r.cfg
	for _, s := range r.services {
		if s.Kind == configs.ServiceConnMgr && filepath.Base(s.Path) == ProgConnMgr && len(c.Runner.HTTPSPorts) > 0 {
			w = append(w, "[runner] https_ports is not acted on yet: "+ProgConnMgr+" has no TLS listeners, so those ports are not opened (condure_bin=/usr/bin/condure serves them)")
			break
		}
	}
	if c.Runner.ConnMgrProcesses > 1 && c.HasService(configs.ServiceProxy) {
		for n := 2; n <= c.Runner.ConnMgrProcesses; n++ {
			want := c.ConnMgrBaseN(n) + "-out"
			if !slices.Contains(c.Proxy.CondureInSpecs, want) {
				w = append(w, fmt.Sprintf("connmgr_processes=%d: [proxy] condure_in_specs lacks %s, so requests accepted by %s will not reach the proxy (list every connection manager's sockets in the [proxy] condure_* specs)", c.Runner.ConnMgrProcesses, want, ConnMgrID(n)))
			}
		}
	}
	for _, s := range r.services {
		if s.Kind == configs.ServiceConnMgr && c.Runner.ClientHeaderTimeout >= 0 && filepath.Base(s.Path) != ProgConnMgr {
			w = append(w, fmt.Sprintf("client_header_timeout=%d is not applied: it needs %s, and the connection manager is %s", c.Runner.ClientHeaderTimeout, ProgConnMgr, s.Path))
			break
		}
	}
	return w
}

// prepare creates rundir and logdir and writes zurl.conf when zurl is ours
// to manage.
func (r *Runner) prepare() error {
	c := r.cfg
	if err := os.MkdirAll(c.Global.RunDir, 0o755); err != nil {
		return fmt.Errorf("creating rundir: %w", err)
	}
	if c.Runner.LogDir != "" && !r.opts.MergeOutput {
		if err := os.MkdirAll(c.Runner.LogDir, 0o755); err != nil {
			return fmt.Errorf("creating logdir: %w", err)
		}
	}
	if c.HasService(configs.ServiceZurl) {
		if _, err := c.WriteZurlConf(); err != nil {
			return err
		}
	}
	return nil
}

// Run starts every service and supervises them until ctx is done (then it
// stops them and returns nil) or one of them exits on its own (then it stops
// the others and returns an error wrapping ErrServiceExited that names it).
func (r *Runner) Run(ctx context.Context) error {
	r.log.Info().Msg("starting...")
	for _, w := range r.Warnings() {
		r.log.Warn().Msg(w)
	}
	if err := r.prepare(); err != nil {
		return err
	}
	out := &lockedWriter{w: r.opts.Output}
	exits := make(chan *child, len(r.services))
	for _, svc := range r.services {
		r.log.Info().Msgf("starting %s", svc.Label)
		r.log.Debug().Str("path", svc.Path).Strs("args", svc.Args).Msg(svc.Name)
		c, err := startChild(svc, out, r.opts.Env, exits)
		if err != nil {
			r.log.Error().Err(err).Msg("start failed")
			r.stopAll()
			return err
		}
		r.mu.Lock()
		r.children = append(r.children, c)
		r.mu.Unlock()
		if ctx.Err() != nil {
			break // stopping already: don't start the rest
		}
	}
	if ctx.Err() == nil {
		r.log.Info().Msg("started")
	}
	select {
	case <-ctx.Done():
		r.log.Info().Msg("stopping...")
		r.stopAll()
		r.log.Info().Msg("stopped")
		return nil
	case <-r.kill:
		r.stopAll()
		return nil
	case c := <-exits:
		r.log.Error().Str("service", c.svc.Name).Str("status", c.exitDesc()).Msgf("%s exited unexpectedly", c.svc.Label)
		r.stopAll()
		return fmt.Errorf("%w: %s (%s)", ErrServiceExited, c.svc.Name, c.exitDesc())
	}
}

// stopAll sends SIGTERM to every running child, waits up to the stop
// timeout (or until Kill), then kills what is left, and waits for all.
func (r *Runner) stopAll() {
	r.mu.Lock()
	children := slices.Clone(r.children)
	r.mu.Unlock()
	for _, c := range children {
		if !c.exited() {
			r.log.Info().Msgf("stopping %s", c.svc.Label)
			c.signal(syscall.SIGTERM)
		}
	}
	deadline := time.NewTimer(r.opts.StopTimeout)
	defer deadline.Stop()
wait:
	for _, c := range children {
		select {
		case <-c.done:
		case <-deadline.C:
			break wait
		case <-r.kill:
			break wait
		}
	}
	for _, c := range children {
		if !c.exited() {
			r.log.Warn().Msgf("%s running while needing to exit, forcing quit", c.svc.Label)
			c.signal(syscall.SIGKILL)
		}
	}
	for _, c := range children {
		<-c.done
	}
}

// Reload forwards SIGHUP to the proxy, handler and zurl, as Pushpin does.
func (r *Runner) Reload() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.children {
		if c.svc.ForwardHUP {
			r.log.Info().Msgf("reloading %s", c.svc.Label)
			c.signal(syscall.SIGHUP)
		}
	}
}

// Kill makes a running stop skip the grace period: children are killed at
// once. It is what a second SIGINT/SIGTERM does.
func (r *Runner) Kill() {
	r.killOnce.Do(func() { close(r.kill) })
}
