package runner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/internal/logbuf"
	"github.com/pushpin-go/pushpin/internal/logfmt"
	"github.com/pushpin-go/pushpin/internal/testwait"
)

// fakeRunner builds a Runner over fake programs in bins, with every service.
func fakeRunner(t *testing.T, bins string, stop time.Duration) (*Runner, *configs.Config, *logbuf.Buffer) {
	t.Helper()
	dir := t.TempDir()
	c := loadConf(t, dir, "services=condure,zurl,pushpin-proxy,pushpin-handler\nhttp_port=127.0.0.1:7999\n", configs.Options{})
	out := &logbuf.Buffer{}
	r, err := New(c, Options{Plan: Plan{ConfigFile: c.File, ExeDir: bins, MergeOutput: true}, Output: out, StopTimeout: stop},
		logfmt.NewLogger(out, configs.LevelInfo))
	if err != nil {
		t.Fatal(err)
	}
	return r, c, out
}

// pids reads every service's pid file.
func pids(t *testing.T, r *Runner) map[string]int {
	t.Helper()
	m := map[string]int{}
	testwait.For(t, 5*time.Second, func() error {
		for _, s := range r.Services() {
			b, err := os.ReadFile(s.PIDFile)
			if err != nil {
				return err
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				return err
			}
			m[s.Name] = pid
		}
		return nil
	})
	return m
}

// gone reports whether pid has exited and been reaped.
func gone(pid int) bool { return syscall.Kill(pid, 0) != nil }

func runAsync(r *Runner, ctx context.Context) chan error {
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	return errc
}

func TestRunStopsCleanlyOnCancel(t *testing.T) {
	t.Parallel()
	r, c, out := fakeRunner(t, binDir(t, idleScript), 5*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	errc := runAsync(r, ctx)
	ps := pids(t, r)
	testwait.For(t, 5*time.Second, func() error {
		for _, want := range []string{"[condure] started --log-level=2", "[proxy] started --config=", "[handler] plain line", "[zurl] plain line"} {
			if !strings.Contains(out.String(), want) {
				return errors.New("no " + want)
			}
		}
		return nil
	})
	if _, err := os.Stat(c.ZurlConfPath()); err != nil {
		t.Errorf("zurl.conf not written: %v", err)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	for name, pid := range ps {
		if !gone(pid) {
			t.Errorf("%s (pid %d) still running", name, pid)
		}
	}
	for _, s := range r.Services() {
		if _, err := os.Stat(s.PIDFile); !os.IsNotExist(err) {
			t.Errorf("pid file %s left behind", s.PIDFile)
		}
	}
}

func TestRunChildExitStopsAll(t *testing.T) {
	t.Parallel()
	bins := binDir(t, idleScript)
	fakeBin(t, bins, ProgHandler, "echo dying; sleep 0.3; exit 3")
	r, _, out := fakeRunner(t, bins, 5*time.Second)
	errc := runAsync(r, context.Background())
	ps := pids(t, r)
	var err error
	select {
	case err = <-errc:
	case <-time.After(10 * time.Second):
		t.Fatal("runner kept running after a child died")
	}
	if !errors.Is(err, ErrServiceExited) || !strings.Contains(err.Error(), "pushpin-handler") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("Run: %v, want ErrServiceExited naming pushpin-handler and its status", err)
	}
	if !strings.Contains(out.String(), "handler exited unexpectedly") || !strings.Contains(out.String(), "[handler] dying") {
		t.Errorf("output:\n%s", out)
	}
	for name, pid := range ps {
		if !gone(pid) {
			t.Errorf("%s (pid %d) still running", name, pid)
		}
	}
}

// A child ignoring SIGTERM is killed after the stop timeout; Kill skips it.
func TestRunKillsStubbornChild(t *testing.T) {
	t.Parallel()
	bins := binDir(t, idleScript)
	fakeBin(t, bins, ProgZurl, `trap '' TERM; echo ready; while :; do sleep 0.02; done`)
	r, _, out := fakeRunner(t, bins, 300*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	errc := runAsync(r, ctx)
	ps := pids(t, r)
	testwait.For(t, 5*time.Second, func() error {
		if !strings.Contains(out.String(), "[zurl] ready") {
			return errors.New("zurl not ready")
		}
		return nil
	})
	start := time.Now()
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
		t.Errorf("stop took %v, want about the 300ms timeout", d)
	}
	if !strings.Contains(out.String(), "zurl running while needing to exit, forcing quit") {
		t.Errorf("no forced-quit line:\n%s", out)
	}
	for name, pid := range ps {
		if !gone(pid) {
			t.Errorf("%s (pid %d) still running", name, pid)
		}
	}
}

func TestKillSkipsGracePeriod(t *testing.T) {
	t.Parallel()
	bins := binDir(t, idleScript)
	fakeBin(t, bins, ProgZurl, `trap '' TERM; echo ready; while :; do sleep 0.02; done`)
	r, _, out := fakeRunner(t, bins, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	errc := runAsync(r, ctx)
	testwait.For(t, 5*time.Second, func() error {
		if !strings.Contains(out.String(), "[zurl] ready") {
			return errors.New("zurl not ready")
		}
		return nil
	})
	cancel()
	r.Kill() // what a second SIGTERM does
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Kill did not cut the one-minute grace period")
	}
}

// Reload signals the proxy, handler and zurl, not the connection manager.
// The stand-ins trap HUP, so this shows only who is signalled; that the real
// programs survive it, under load, is runner/e2e's
// TestRunnerHangupKeepsEverythingServing.
func TestReloadSignalsProxyHandlerZurlOnly(t *testing.T) {
	t.Parallel()
	r, _, out := fakeRunner(t, binDir(t, hupScript), 5*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := runAsync(r, ctx)
	pids(t, r)
	testwait.For(t, 5*time.Second, func() error {
		if strings.Count(out.String(), "plain line") < 4 {
			return errors.New("children not up")
		}
		return nil
	})
	r.Reload()
	testwait.For(t, 5*time.Second, func() error {
		for _, l := range []string{"proxy", "handler", "zurl"} {
			if !strings.Contains(out.String(), "["+l+"] got hup") {
				return errors.New(l + " got no SIGHUP")
			}
		}
		return nil
	})
	if strings.Contains(out.String(), "[condure] got hup") {
		t.Error("SIGHUP forwarded to the connection manager")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// Without merged output each child's stdout/stderr goes to its log file.
func TestRunLogFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := loadConf(t, dir, "services=condure,pushpin-handler\nhttp_port=127.0.0.1:7999\nlogdir=log\n", configs.Options{})
	r, err := New(c, Options{Plan: Plan{ConfigFile: c.File, ExeDir: binDir(t, idleScript)}, Output: &logbuf.Buffer{}}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := runAsync(r, ctx)
	testwait.For(t, 5*time.Second, func() error {
		for _, n := range []string{"condure", "pushpin-handler"} {
			b, err := os.ReadFile(filepath.Join(dir, "log", n+".log"))
			if err != nil {
				return err
			}
			if !strings.Contains(string(b), "plain line") {
				return errors.New(n + ".log incomplete")
			}
		}
		return nil
	})
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestStartFailure(t *testing.T) {
	t.Parallel()
	bins := binDir(t, idleScript)
	r, _, _ := fakeRunner(t, bins, time.Second)
	// The program vanishes between planning and starting.
	if err := os.Remove(filepath.Join(bins, ProgHandler)); err != nil {
		t.Fatal(err)
	}
	ps := make(chan error, 1)
	go func() { ps <- r.Run(context.Background()) }()
	select {
	case err := <-ps:
		if !errors.Is(err, ErrStartFailed) || !strings.Contains(err.Error(), "pushpin-handler") {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}
