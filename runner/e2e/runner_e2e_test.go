package e2e

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/internal/testwait"
)

// runnerStack writes a stack whose connection manager and zurl slots run
// the given binaries (empty: the runner's defaults, our programs).
func runnerStack(t *testing.T, routes, condure, zurl string) *stack {
	t.Helper()
	s := newStack(t, routes)
	s.CondureBin, s.ZurlBin = condure, zurl
	s.write(t)
	return s
}

func TestRunnerCheckConfig(t *testing.T) {
	t.Parallel()
	s := runnerStack(t, "* test", "", "")
	out, err := exec.Command(bin("pushpin"), "--config="+s.Conf, "--check-config").CombinedOutput()
	if err != nil {
		t.Fatalf("good config rejected: %v\n%s", err, out)
	}
	bad := filepath.Join(s.Dir, "bad.conf")
	conf, _ := os.ReadFile(s.Conf)
	mustWrite(t, bad, strings.Replace(string(conf), fmt.Sprintf("http_port=127.0.0.1:%d", s.HTTPPort), "http_port=abc", 1))
	out, err = exec.Command(bin("pushpin"), "--config="+bad, "--check-config").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "http_port") || !strings.Contains(string(out), "abc") {
		t.Fatalf("bad http_port: err %v, output %q (want the key and value named)", err, out)
	}
}

// readPIDs returns the children's pids from the runner's pid files.
func readPIDs(t *testing.T, s *stack, names ...string) map[string]int {
	t.Helper()
	pids := map[string]int{}
	testwait.For(t, 15*time.Second, func() error {
		for _, n := range names {
			b, err := os.ReadFile(filepath.Join(s.RunDir, n+".pid"))
			if err != nil {
				return err
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				return err
			}
			pids[n] = pid
		}
		return nil
	})
	return pids
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// The runner with Pushpin's condure and zurl in their slots (condure_bin,
// zurl_bin) around our proxy and handler: it serves, and SIGTERM stops
// every child.
func TestRunnerWithRealEdges(t *testing.T) {
	needRealPushpin(t)
	t.Parallel()
	s := runnerStack(t, "* test", realCondure, realZurl)
	r := s.startRunner(t)
	s.waitReady(t, "/")
	st := openStreamExpect(t, s.Client, s.url("/stream"), "[stream opened]\n")
	publishUntilSeen(t, s, st, "test", "hello there\n")
	pids := readPIDs(t, s, "condure", "zurl", "pushpin-proxy", "pushpin-handler")
	if out := r.output(); !strings.Contains(out, "[handler]") && !strings.Contains(out, "handler") {
		t.Errorf("merged output has no handler lines:\n%s", out)
	}
	stopRunner(t, r, pids)
}

// stopRunner sends the runner SIGTERM and checks that it and every child
// in pids stopped.
func stopRunner(t *testing.T, r *proc, pids map[string]int) {
	t.Helper()
	if err := syscall.Kill(r.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.done:
	case <-time.After(15 * time.Second):
		t.Fatal("runner did not stop on SIGTERM")
	}
	for name, pid := range pids {
		if alive(pid) {
			t.Errorf("%s (pid %d) still running after the runner stopped", name, pid)
		}
	}
}

// A child that dies makes the runner stop the others and exit non-zero,
// naming the service.
func TestRunnerChildDies(t *testing.T) {
	needRealPushpin(t)
	t.Parallel()
	s := runnerStack(t, "* test", realCondure, realZurl)
	r := s.startRunner(t)
	s.waitReady(t, "/")
	pids := readPIDs(t, s, "condure", "zurl", "pushpin-proxy", "pushpin-handler")
	if err := syscall.Kill(pids["pushpin-handler"], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.done:
	case <-time.After(15 * time.Second):
		t.Fatal("runner kept running after a child died")
	}
	var ee *exec.ExitError
	if r.err == nil || !asExit(r.err, &ee) {
		t.Fatalf("runner exit: %v, want a non-zero exit", r.err)
	}
	if out := r.output(); !strings.Contains(out, "handler") {
		t.Fatalf("runner output does not name the handler:\n%s", out)
	}
	for name, pid := range pids {
		if alive(pid) {
			t.Errorf("%s (pid %d) still running", name, pid)
		}
	}
}

func asExit(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}

var _ = io.Discard
