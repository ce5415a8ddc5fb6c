package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pushpin-go/pushpin/internal/freeport"
	"github.com/pushpin-go/pushpin/internal/stackconf"
)

// Real Pushpin 1.36 programs (Debian package `pushpin`).
var realBins = programs{
	Runner: "/usr/bin/pushpin", ConnMgr: "/usr/bin/condure", Proxy: "/usr/bin/pushpin-proxy",
	Handler: "/usr/bin/pushpin-handler", Zurl: "/usr/bin/zurl",
}

// programs are the executables of one target.
type programs struct{ Runner, ConnMgr, Proxy, Handler, Zurl string }

func oursBins(repo string) programs {
	// Absolute: the programs run with the stack's temp dir as working dir.
	if abs, err := filepath.Abs(repo); err == nil {
		repo = abs
	}
	b := func(n string) string { return filepath.Join(repo, "bin", n) }
	return programs{
		Runner: b("pushpin"), ConnMgr: b("pushpin-connmgr"), Proxy: b("pushpin-proxy"),
		Handler: b("pushpin-handler"), Zurl: b("pushpin-zurl"),
	}
}

// missing names the first program that is not installed, or "".
func (p programs) missing(launch string) string {
	list := []string{p.ConnMgr, p.Proxy, p.Handler, p.Zurl}
	if launch == "runner" {
		list = append(list, p.Runner)
	}
	for _, f := range list {
		if st, err := os.Stat(f); err != nil || st.IsDir() {
			return f
		}
	}
	return ""
}

// stack is one running target: a Pushpin deployment in a temp dir with every
// port chosen free, laid out as runner/e2e's harness lays it out.
type stack struct {
	name                   string
	dir, runDir, conf      string
	httpPort, pushInPort   int
	pushInHTTPPort         int
	pushInSubPort, cmdPort int
	connMgrs               int
	procs                  []*proc
}

// stackConfig is what both targets share in one run.
type stackConfig struct {
	launch      string // "tiers" or "runner"
	internal    string // internal.conf text, zurl specs in the run dir
	backendAddr string
	extraConf   string // appended to [handler]
	connMgrs    int    // connection manager processes (ours only; 0 means 1)
}

// freePort: see internal/freeport for why not 127.0.0.1:0.
func freePort() (int, error) { return freeport.Get() }

// startStack writes the config and starts the target's programs; it returns
// once a proxied request, a stream hold and the publish API all answer.
func startStack(ctx context.Context, name string, bins programs, sc stackConfig) (*stack, error) {
	if m := bins.missing(sc.launch); m != "" {
		hint := "run `make build`"
		if name == targetPushpin {
			hint = "install Debian's pushpin 1.36: `scripts/deps.sh --pushpin`"
		}
		return nil, fmt.Errorf("%s: program %s not found: %s", name, m, hint)
	}
	// ipc paths must stay under ~100 bytes: a short temp dir.
	dir, err := os.MkdirTemp("", "ppb")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	s := &stack{name: name, dir: dir, runDir: filepath.Join(dir, "run"), conf: filepath.Join(dir, "pushpin.conf"),
		connMgrs: max(sc.connMgrs, 1)}
	for _, p := range []*int{&s.httpPort, &s.pushInPort, &s.pushInHTTPPort, &s.pushInSubPort, &s.cmdPort} {
		if *p, err = freePort(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if err := s.write(sc, bins); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.start(sc.launch, bins); err != nil {
		s.stop()
		return nil, err
	}
	if err := s.waitReady(ctx, 30*time.Second); err != nil {
		out := s.outputs()
		s.stop()
		if s.connMgrs > 1 && sc.launch == "runner" {
			err = fmt.Errorf("%w (connmgr_processes=%d: does the runner wire the proxy and handler to every connection manager? -scale-launch=tiers lists their sockets explicitly)", err, s.connMgrs)
		}
		return nil, &startError{err: fmt.Errorf("%s did not come up: %w", name, err), outputs: out}
	}
	return s, nil
}

// startError is a target that started but never became ready; outputs are
// the tails of its programs' output, shown apart from the one-line error.
type startError struct {
	err     error
	outputs string
}

func (e *startError) Error() string { return e.err.Error() }
func (e *startError) Unwrap() error { return e.err }

func (s *stack) ipc(n string) string { return "ipc://" + filepath.Join(s.runDir, "pushpin-"+n) }

// connMgrBase is connection manager n's --zclient-stream base (1-based), as
// our runner names them: condure, condure-2, ….
func (s *stack) connMgrBase(n int) string {
	if n <= 1 {
		return s.ipc("condure")
	}
	return s.ipc(fmt.Sprintf("condure-%d", n))
}

func (s *stack) write(sc stackConfig, bins programs) error {
	// Several connection managers: the runner starts them from
	// connmgr_processes (and wires the proxy and handler to them); started
	// one by one, the proxy and handler are given every one's sockets here.
	var runnerExtra, proxyExtra, handlerExtra string
	if s.connMgrs > 1 && sc.launch == "runner" {
		runnerExtra = fmt.Sprintf("connmgr_processes=%d\n", s.connMgrs)
	}
	if s.connMgrs > 1 && sc.launch == "tiers" {
		var out, outStream, in []string
		for n := 1; n <= s.connMgrs; n++ {
			b := s.connMgrBase(n)
			out, outStream, in = append(out, b+"-out"), append(outStream, b+"-out-stream"), append(in, b+"-in")
		}
		proxyExtra = fmt.Sprintf("condure_in_specs=%s\ncondure_in_stream_specs=%s\ncondure_out_specs=%s\n",
			strings.Join(out, ","), strings.Join(outStream, ","), strings.Join(in, ","))
		handlerExtra = fmt.Sprintf("condure_in_stream_specs=%s\ncondure_out_specs=%s\n",
			strings.Join(outStream, ","), strings.Join(in, ","))
	}
	st := stackconf.Stack{Dir: s.dir, HTTPPort: s.httpPort, PushInPort: s.pushInPort, PushInHTTPPort: s.pushInHTTPPort,
		PushInSubPort: s.pushInSubPort, CommandPort: s.cmdPort, Routes: routes(sc.backendAddr), Internal: sc.internal,
		Runner:  fmt.Sprintf("condure_bin=%s\nzurl_bin=%s\n%s", bins.ConnMgr, bins.Zurl, runnerExtra),
		Proxy:   proxyExtra,
		Handler: handlerExtra + sc.extraConf}
	if st.RunDir() != s.runDir || st.Conf() != s.conf {
		return fmt.Errorf("stack paths %s, %s differ from stackconf's", s.runDir, s.conf)
	}
	return st.Write()
}

// wsPathPrefix is where the WebSocket sessions go: an over_http route to
// the backend's WebSocket-over-HTTP endpoint (wsbackend.go).
const wsPathPrefix = "/ws/"

// routes is the routes file: WebSocket-over-HTTP for /ws/, the rest (plain
// requests, stream holds) proxied as is. Both to the one backend.
func routes(backend string) string {
	return "*,path_beg=" + wsPathPrefix + " " + backend + ",over_http\n* " + backend
}

// start launches the programs with the harness's command lines.
func (s *stack) start(launch string, b programs) error {
	type spec struct {
		name, path string
		args       []string
	}
	var specs []spec
	if launch == "runner" {
		specs = []spec{{"runner", b.Runner, []string{"--config=" + s.conf, "--merge-output"}}}
	} else {
		for n := 1; n <= max(s.connMgrs, 1); n++ {
			args := []string{fmt.Sprintf("--listen=127.0.0.1:%d,stream", s.httpPort),
				"--zclient-stream=" + s.connMgrBase(n), "--buffer-size=8192", "--stream-maxconn=50000", "--log-level=2"}
			name := "connmgr"
			if n > 1 {
				args = append(args, fmt.Sprintf("--id=condure-%d", n))
				name = fmt.Sprintf("connmgr-%d", n)
			}
			specs = append(specs, spec{name, b.ConnMgr, args})
		}
		specs = append(specs, []spec{
			{"zurl", b.Zurl, []string{"--config=" + filepath.Join(s.runDir, "zurl.conf"), "--loglevel=2"}},
			{"proxy", b.Proxy, []string{"--config=" + s.conf, "--ipc-prefix=pushpin-", "--loglevel=2"}},
			{"handler", b.Handler, []string{"--config=" + s.conf, "--ipc-prefix=pushpin-", "--loglevel=2"}},
		}...)
	}
	for _, sp := range specs {
		p, err := startProc(s.dir, sp.name, sp.path, sp.args...)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		s.procs = append(s.procs, p)
	}
	return nil
}

// stop stops every program and removes the temp dir.
func (s *stack) stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].stop()
	}
	os.RemoveAll(s.dir)
}

// pids are the started programs; mem.go adds their descendants.
func (s *stack) pids() []int {
	out := make([]int, 0, len(s.procs))
	for _, p := range s.procs {
		if !p.exited() {
			out = append(out, p.pid())
		}
	}
	return out
}

// alive fails if any program has exited: figures from a half-dead stack are worthless.
func (s *stack) alive() error {
	for _, p := range s.procs {
		if p.exited() {
			return fmt.Errorf("%s: %s exited (%v): %s", s.name, p.name, p.cmd.ProcessState, strings.TrimSpace(p.tail(300)))
		}
	}
	return nil
}

func (s *stack) outputs() string {
	var b strings.Builder
	for _, p := range s.procs {
		fmt.Fprintf(&b, "\n---- %s %s output (tail) ----\n%s", s.name, p.name, p.tail(1500))
	}
	return b.String()
}

func (s *stack) addr() string           { return fmt.Sprintf("127.0.0.1:%d", s.httpPort) }
func (s *stack) url(path string) string { return "http://" + s.addr() + path }
func (s *stack) publishURL() string {
	return fmt.Sprintf("http://127.0.0.1:%d/publish/", s.pushInHTTPPort)
}

// waitReady polls until a plain request goes through, a stream hold opens
// (the hold needs the proxy→handler sockets, which come up after the client
// port) and the publish API answers.
func (s *stack) waitReady(ctx context.Context, d time.Duration) error {
	probe := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{}}
	defer probe.CloseIdleConnections()
	checks := []struct {
		what string
		fn   func() error
	}{
		{"proxied GET /plain", func() error {
			resp, err := probe.Get(s.url("/plain"))
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			if resp.StatusCode != 200 {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		}},
		{"stream hold", func() error {
			// Several holds with several connection managers: the kernel
			// spreads them, so one not wired to the proxy likely shows.
			for i := 0; i < 4*s.connMgrs-3; i++ {
				h, err := openHold(s.addr(), "/stream?ch=ready", 3*time.Second)
				if err != nil {
					return err
				}
				h.close()
			}
			return nil
		}},
		{"publish API", func() error {
			resp, err := probe.Get(fmt.Sprintf("http://127.0.0.1:%d/", s.pushInHTTPPort))
			if err != nil {
				return err
			}
			resp.Body.Close()
			return nil
		}},
	}
	deadline := time.Now().Add(d)
	for _, c := range checks {
		for {
			if err := s.alive(); err != nil {
				return err
			}
			err := c.fn()
			if err == nil {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("%s: %w", c.what, errors.Join(err, ctx.Err()))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// readInternalConf loads internal.conf: the repo's configs/ first, else
// Debian's (stackconf points its zurl sockets into the run dir).
func readInternalConf(repo string) (string, error) {
	var b []byte
	var err error
	for _, p := range []string{filepath.Join(repo, "configs", "internal.conf"), "/usr/lib/pushpin/internal.conf"} {
		if b, err = os.ReadFile(p); err == nil {
			break
		}
	}
	if err != nil {
		return "", fmt.Errorf("reading internal.conf: %w", err)
	}
	return string(b), nil
}
