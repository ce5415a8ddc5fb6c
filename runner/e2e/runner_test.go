package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/internal/testwait"
)

// The runner with its default slots (all our programs from bin/): it
// serves the test route, holds a stream that a publish reaches, labels the
// merged output per service, and SIGTERM leaves no child behind.
func TestRunnerAllOurs(t *testing.T) {
	t.Parallel()
	s := runnerStack(t, "* test", "", "")
	r := s.startRunner(t)
	s.waitReady(t, "/")
	expectTestRoute(t, s, "GET /")
	st := openStreamExpect(t, s.Client, s.url("/stream"), "[stream opened]\n")
	publishUntilSeen(t, s, st, "test", "hello there\n")

	pids := readPIDs(t, s, "condure", "zurl", "pushpin-proxy", "pushpin-handler")
	out := r.output()
	for _, label := range []string{"[condure]", "[zurl]", "[proxy]", "[handler]"} {
		if !strings.Contains(out, label) {
			t.Errorf("merged output has no %s lines", label)
		}
	}
	if _, err := os.Stat(filepath.Join(s.RunDir, "zurl.conf")); err != nil {
		t.Errorf("zurl.conf: %v", err)
	}
	if err := syscall.Kill(r.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.done:
	case <-time.After(15 * time.Second):
		t.Fatal("runner did not stop on SIGTERM")
	}
	if r.err != nil {
		t.Errorf("runner exit after SIGTERM: %v, want 0", r.err)
	}
	for name, pid := range pids {
		if alive(pid) {
			t.Errorf("%s (pid %d) still running after the runner stopped", name, pid)
		}
		if _, err := os.Stat(filepath.Join(s.RunDir, name+".pid")); !os.IsNotExist(err) {
			t.Errorf("%s.pid left behind", name)
		}
	}
}

// Without --merge-output every service logs to {logdir}/<service>.log.
func TestRunnerLogFiles(t *testing.T) {
	t.Parallel()
	s := runnerStack(t, "* test", "", "")
	startProc(t, "pushpin", bin("pushpin"), "--config="+s.Conf)
	s.waitReady(t, "/")
	testwait.For(t, 10*time.Second, func() error {
		for _, n := range []string{"condure", "zurl", "pushpin-proxy", "pushpin-handler"} {
			st, err := os.Stat(filepath.Join(s.Dir, "log", n+".log"))
			if err != nil {
				return err
			}
			if st.Size() == 0 {
				return os.ErrNotExist
			}
		}
		return nil
	})
}
