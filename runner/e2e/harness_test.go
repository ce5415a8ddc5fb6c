package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/internal/freeport"
	"github.com/pushpin-go/pushpin/internal/stackconf"
	"github.com/pushpin-go/pushpin/internal/testwait"
)

// repoRoot is the module root; binaries are built into repoRoot/bin.
var repoRoot = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}()

// Real Pushpin 1.36 programs (Debian package `pushpin`).
const (
	realCondure = "/usr/bin/condure"
	realProxy   = "/usr/bin/pushpin-proxy"
	realHandler = "/usr/bin/pushpin-handler"
	realZurl    = "/usr/bin/zurl"
)

func TestMain(m *testing.M) {
	// Build every program so the tests always run the code under test; make
	// test builds first too, so this is quick (cached) there.
	if os.Getenv("E2E_NO_BUILD") == "" {
		cmd := exec.Command("go", "build", "-o", filepath.Join(repoRoot, "bin")+"/", "./cmd/...")
		cmd.Dir = repoRoot
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: building binaries:", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// bin returns the path of one of our programs.
func bin(name string) string { return filepath.Join(repoRoot, "bin", name) }

// needRealPushpin skips when Debian's pushpin package is not installed
// (`scripts/deps.sh --pushpin` installs it; make test runs that).
func needRealPushpin(t *testing.T) {
	t.Helper()
	for _, p := range []string{realCondure, realProxy, realHandler, realZurl} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("Pushpin 1.36 not installed (%s missing): run scripts/deps.sh --pushpin", p)
		}
	}
}

// freePort returns a loopback TCP port for a child process to bind; see
// internal/freeport for why not 127.0.0.1:0.
func freePort(t *testing.T) int {
	t.Helper()
	p, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// proc is a started program; it is stopped (its whole process group) when
// the test ends, and its output is shown if the test failed.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func startProc(t *testing.T, name, path string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".out")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("---- %s output (tail) ----\n%s", name, b)
		}
	})
	return p
}

// stop sends SIGTERM to the process group, then SIGKILL after 5 s.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// expectTestRoute GETs / on a stack routed to the built-in test handler
// and checks its greeting; what names the request in a failure.
func expectTestRoute(t *testing.T, s *stack, what string) {
	t.Helper()
	resp, err := s.Client.Get(s.url("/"))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Hello from the Pushpin test handler!") {
		t.Fatalf("%s: %d %q", what, resp.StatusCode, body)
	}
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// output returns what the process printed so far.
func (p *proc) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// stack describes one Pushpin deployment in a temp dir: a pushpin.conf with
// every port chosen free, usable by the real Pushpin programs and ours alike.
type stack struct {
	Dir, RunDir, Conf string
	HTTPPort          int // client port
	PushInPort        int // ZeroMQ PULL publish
	PushInHTTPPort    int // HTTP control API
	PushInSubPort     int // ZeroMQ SUB publish
	CommandPort       int // command socket
	Routes            string
	// ExtraConf is appended to pushpin.conf (e.g. "[proxy]\ndebug=true\n").
	ExtraConf string
	// Client has its own connection pool, so stacks never share connections.
	Client *http.Client
	// CondureBin and ZurlBin, when set, go into [runner] (the runner's
	// connection manager and zurl slots); the runner defaults otherwise.
	CondureBin, ZurlBin string
	// RunnerConf is extra [runner] lines.
	RunnerConf string
	// Procs are the tiers tiers.start started: "connmgr", "zurl",
	// "handler", "proxy".
	Procs map[string]*proc
}

func newStack(t *testing.T, routes string) *stack {
	t.Helper()
	// ipc paths must stay under ~100 bytes: use a short temp dir.
	dir, err := os.MkdirTemp("", "pp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return &stack{
		Dir: dir, RunDir: filepath.Join(dir, "run"), Conf: filepath.Join(dir, "pushpin.conf"),
		HTTPPort: freePort(t), PushInPort: freePort(t), PushInHTTPPort: freePort(t),
		PushInSubPort: freePort(t), CommandPort: freePort(t), Routes: routes,
		Client: &http.Client{Transport: &http.Transport{}},
	}
}

// ipc returns the endpoint of a named internal socket.
func (s *stack) ipc(name string) string { return "ipc://" + filepath.Join(s.RunDir, "pushpin-"+name) }

// write writes pushpin.conf, internal.conf (zurl sockets in the run dir, as
// upstream 1.36), routes and zurl.conf: internal/stackconf's deployment,
// the one the load tool runs too.
func (s *stack) write(t *testing.T) {
	t.Helper()
	sc := stackconf.Stack{Dir: s.Dir, HTTPPort: s.HTTPPort, PushInPort: s.PushInPort, PushInHTTPPort: s.PushInHTTPPort,
		PushInSubPort: s.PushInSubPort, CommandPort: s.CommandPort, Routes: s.Routes, Internal: internalConf,
		Runner: s.runnerBins(), Extra: s.ExtraConf}
	if sc.RunDir() != s.RunDir || sc.Conf() != s.Conf {
		t.Fatalf("stack paths %s, %s differ from stackconf's", s.RunDir, s.Conf)
	}
	if err := sc.Write(); err != nil {
		t.Fatal(err)
	}
}

func (s *stack) runnerBins() string {
	out := s.RunnerConf
	if s.CondureBin != "" {
		out += "condure_bin=" + s.CondureBin + "\n"
	}
	if s.ZurlBin != "" {
		out += "zurl_bin=" + s.ZurlBin + "\n"
	}
	return out
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Starting the tiers one by one; path is ours (bin(...)) or the real one.

func (s *stack) startConnMgr(t *testing.T, path string) *proc {
	return startProc(t, filepath.Base(path), path,
		fmt.Sprintf("--listen=127.0.0.1:%d,stream", s.HTTPPort),
		"--zclient-stream="+s.ipc("condure"),
		"--buffer-size=8192", "--stream-maxconn=50000", "--log-level=2")
}

func (s *stack) startProxy(t *testing.T, path string) *proc {
	return startProc(t, filepath.Base(path), path, "--config="+s.Conf, "--ipc-prefix=pushpin-", "--loglevel=2")
}

func (s *stack) startHandler(t *testing.T, path string) *proc {
	return startProc(t, filepath.Base(path), path, "--config="+s.Conf, "--ipc-prefix=pushpin-", "--loglevel=2")
}

func (s *stack) startZurl(t *testing.T, path string) *proc {
	return startProc(t, filepath.Base(path), path, "--config="+filepath.Join(s.RunDir, "zurl.conf"), "--loglevel=2")
}

// startRunner starts our pushpin runner with this stack's config.
func (s *stack) startRunner(t *testing.T, args ...string) *proc {
	return startProc(t, "pushpin", bin("pushpin"), append([]string{"--config=" + s.Conf, "--merge-output"}, args...)...)
}

// url returns a client URL on the stack's HTTP port.
func (s *stack) url(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", s.HTTPPort, path)
}

// publishURL is the handler's HTTP publish endpoint.
func (s *stack) publishURL() string {
	return fmt.Sprintf("http://127.0.0.1:%d/publish/", s.PushInHTTPPort)
}

// waitReady waits until a request through the stack answers (any status
// from the route, not a connection error) and the publish API is up.
func (s *stack) waitReady(t *testing.T, path string) {
	t.Helper()
	// A short per-request timeout: a request lost while the tiers are still
	// connecting (PUB/SUB slow joiner) must not use up the whole wait.
	probe := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{}}
	defer probe.CloseIdleConnections()
	testwait.For(t, 15*time.Second, func() error {
		resp, err := probe.Get(s.url(path))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	testwait.For(t, 15*time.Second, func() error {
		resp, err := s.Client.Get(fmt.Sprintf("http://127.0.0.1:%d/", s.PushInHTTPPort))
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
}

// publish posts a JSON publish body and fails the test unless it is 200.
func (s *stack) publish(t *testing.T, body string) {
	t.Helper()
	resp, err := s.Client.Post(s.publishURL(), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("publish: %d %s", resp.StatusCode, b)
	}
}

// streamReader reads a held streaming response line by line.
type streamReader struct {
	resp  *http.Response
	lines chan string
}

// tryOpenStream GETs url and returns once the response headers arrived.
func tryOpenStream(t *testing.T, c *http.Client, url string) (*streamReader, error) {
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := c.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	sr := &streamReader{resp: resp, lines: make(chan string, 1024)}
	go func() {
		defer close(sr.lines)
		br := bufio.NewReader(resp.Body)
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				sr.lines <- line
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	return sr, nil
}

// next returns the next line, failing the test after d.
func (sr *streamReader) next(t *testing.T, d time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-sr.lines:
		if !ok {
			t.Fatal("stream ended")
		}
		return l
	case <-time.After(d):
		t.Fatalf("no stream data within %v", d)
	}
	return ""
}

// rawRequest sends raw bytes on a new connection and returns everything
// read until the server closes or d passes.
func rawRequest(t *testing.T, addr string, data []byte, d time.Duration) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(d))
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, err = io.Copy(&buf, c)
	var ne net.Error
	if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
		t.Logf("raw read: %v", err)
	}
	return buf.Bytes()
}

// openStreamExpect opens a stream whose first line must be first, retrying
// while the tiers are still connecting to each other (a hold needs the
// proxy→handler socket, which comes up after the client port).
func openStreamExpect(t *testing.T, c *http.Client, url, first string) *streamReader {
	t.Helper()
	var st *streamReader
	testwait.For(t, 15*time.Second, func() error {
		sr, err := tryOpenStream(t, c, url)
		if err != nil {
			return err
		}
		select {
		case l := <-sr.lines:
			if l == first {
				st = sr
				return nil
			}
			return fmt.Errorf("first line %q, want %q", l, first)
		case <-time.After(5 * time.Second):
			return errors.New("no first line")
		}
	})
	return st
}
