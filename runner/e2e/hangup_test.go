package e2e

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/internal/testwait"
)

// countLabelled counts the lines of merged output from the service shown
// as [label] that end with suffix.
func countLabelled(out, label, suffix string) int {
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "["+label+"]") && strings.HasSuffix(strings.TrimSpace(l), suffix) {
			n++
		}
	}
	return n
}

// proxiedLoad keeps GETting /plain through the stack from a few clients
// until stopped, counting successes and keeping the first failures.
type proxiedLoad struct {
	ok   atomic.Int64
	mu   sync.Mutex
	errs []string
	stop chan struct{}
	wg   sync.WaitGroup
}

func startProxiedLoad(s *stack, clients int) *proxiedLoad {
	l := &proxiedLoad{stop: make(chan struct{})}
	for range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
			defer c.CloseIdleConnections()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				if err := l.one(c, s.url("/plain")); err != nil {
					l.mu.Lock()
					if len(l.errs) < 10 {
						l.errs = append(l.errs, err.Error())
					}
					l.mu.Unlock()
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	return l
}

func (l *proxiedLoad) one(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("reading body: %w", err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "plain response") {
		return fmt.Errorf("status %d, body %q", resp.StatusCode, body)
	}
	return nil
}

// finish stops the load and returns the failures seen.
func (l *proxiedLoad) finish() []string {
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.errs
}

// SIGHUP is Pushpin's reload and log-rotate signal (what logrotate sends);
// the runner passes it on to the proxy, handler and zurl. Ten of them sent
// to the real runner, while streams are held and proxied requests flow
// through every tier, stop nothing: each tier answers every HUP (the proxy
// by reloading its routes), no process exits, no request fails, no held
// stream ends, and every stream still receives a publish afterwards. A HUP
// sent straight to the connection manager does not end it either.
func TestRunnerHangupKeepsEverythingServing(t *testing.T) {
	t.Parallel()
	be := newGripBackend(t)
	s := runnerStack(t, fmt.Sprintf("* localhost:%d", be.port()), "", "")
	r := s.startRunner(t)
	s.waitReady(t, "/plain")
	pids := readPIDs(t, s, "condure", "zurl", "pushpin-proxy", "pushpin-handler")

	const held = 20
	streams := make([]*streamReader, held)
	for i := range streams {
		streams[i] = openStreamExpect(t, s.Client, s.url("/stream?ch=hup"), "stream open\n")
	}
	load := startProxiedLoad(s, 4)
	defer func() {
		if errs := load.finish(); len(errs) > 0 {
			t.Errorf("proxied requests failed around the HUPs: %q", errs)
		}
	}()

	const hups = 10
	for i := 1; i <= hups; i++ {
		// Some requests complete between one HUP and the next, so each
		// lands on a loaded stack.
		base := load.ok.Load()
		testwait.For(t, 15*time.Second, func() error {
			if load.ok.Load() < base+5 {
				return errors.New("proxied requests are not completing")
			}
			return nil
		})
		if err := syscall.Kill(r.cmd.Process.Pid, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		testwait.For(t, 15*time.Second, func() error {
			if r.exited() {
				t.Fatalf("HUP %d: runner exited: %v", i, r.err)
			}
			out := r.output()
			for _, label := range []string{"proxy", "handler", "zurl"} {
				if n := countLabelled(out, label, "reloading"); n < i {
					return fmt.Errorf("HUP %d: %s logged %d reloads", i, label, n)
				}
			}
			if n := strings.Count(out, "routes reloaded"); n < i {
				return fmt.Errorf("HUP %d: proxy reloaded its routes %d times", i, n)
			}
			return nil
		})
	}
	// The runner does not pass HUP to the connection manager (nor does
	// Pushpin's to condure), but one sent to it by hand must not drop every
	// connection either.
	if err := syscall.Kill(pids["condure"], syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 15*time.Second, func() error {
		if n := countLabelled(r.output(), "condure", "reloading"); n < 1 {
			return errors.New("connection manager has not answered its HUP")
		}
		return nil
	})
	base := load.ok.Load()
	testwait.For(t, 15*time.Second, func() error {
		if load.ok.Load() < base+20 {
			return errors.New("proxied requests stopped completing after the HUPs")
		}
		return nil
	})
	for name, pid := range pids {
		if !alive(pid) {
			t.Errorf("%s (pid %d) died of the HUPs", name, pid)
		}
	}
	if out := r.output(); strings.Contains(out, "exited unexpectedly") {
		t.Errorf("runner saw a child exit:\n%s", out)
	}

	publishUntilSeen(t, s, streams[0], "hup", "after ten HUPs\n")
	for i, st := range streams[1:] {
		if l := st.next(t, 10*time.Second); l != "after ten HUPs\n" {
			t.Errorf("stream %d: got %q after the HUPs", i+1, l)
		}
	}
	t.Logf("%d proxied requests completed across %d HUPs", load.ok.Load(), hups)
}

// A HUP makes every program that writes a --logfile reopen it, so that
// logrotate can move the file away: the runner's own log and the proxy's,
// handler's and zurl's (the runner gives them --logfile under logdir when
// output is not merged) start anew at their paths.
func TestRunnerHangupReopensLogFiles(t *testing.T) {
	t.Parallel()
	s := runnerStack(t, "* test", "", "")
	logDir := filepath.Join(s.Dir, "log")
	runnerLog := filepath.Join(s.Dir, "pushpin.log")
	r := startProc(t, "pushpin", bin("pushpin"), "--config="+s.Conf, "--logfile="+runnerLog)
	s.waitReady(t, "/")
	files := map[string]string{
		"runner":  runnerLog,
		"proxy":   filepath.Join(logDir, "pushpin-proxy.log"),
		"handler": filepath.Join(logDir, "pushpin-handler.log"),
		"zurl":    filepath.Join(logDir, "zurl.log"),
	}
	testwait.For(t, 10*time.Second, func() error {
		for name, p := range files {
			if b, err := os.ReadFile(p); err != nil || len(b) == 0 {
				return fmt.Errorf("%s has not logged to %s yet", name, p)
			}
		}
		return nil
	})
	for _, p := range files {
		if err := os.Rename(p, p+".1"); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Kill(r.cmd.Process.Pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 15*time.Second, func() error {
		if r.exited() {
			t.Fatalf("runner exited: %v", r.err)
		}
		for name, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				return fmt.Errorf("%s did not reopen %s: %w", name, p, err)
			}
			if !strings.Contains(string(b), "reloading") {
				return fmt.Errorf("%s: new %s has no reloading line: %q", name, p, b)
			}
		}
		return nil
	})
	// The service keeps answering through the reopened tiers.
	resp, err := s.Client.Get(s.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET / after the HUP: %d", resp.StatusCode)
	}
}
