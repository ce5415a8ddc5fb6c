package e2e

import (
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/internal/testwait"
)

// badRoutes has a good line, two bad ones (a bad proto, a target without a
// port) and a good one after them.
const badRoutes = "*,path_beg=/one test\n*,proto=bogus x:1\n*,path_beg=/nope nohost\n* test"

// pushpin --check-config is the strict mode: it exits non-zero and names
// every bad line of the routes file, not just the first.
func TestCheckConfigNamesEveryBadRouteLine(t *testing.T) {
	t.Parallel()
	s := runnerStack(t, badRoutes, "", "")
	out, err := exec.Command(bin("pushpin"), "--config="+s.Conf, "--check-config").CombinedOutput()
	if _, ok := err.(*exec.ExitError); !ok {
		t.Fatalf("routes with bad lines: err %v (want a non-zero exit), output %s", err, out)
	}
	routes := filepath.Join(s.Dir, "routes")
	for _, want := range []string{routes + ":2:", `proto="bogus"`, routes + ":3:"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, good := range []string{routes + ":1:", routes + ":4:"} {
		if strings.Contains(string(out), good) {
			t.Errorf("output names good line %q:\n%s", good, out)
		}
	}
}

// The proxy, at start-up and on reload, skips a bad routes line (logged
// with file and line) and keeps the rest, as Pushpin does: a route added
// next to a typo takes effect.
func TestProxySkipsBadRouteLines(t *testing.T) {
	t.Parallel()
	be := newGripBackend(t)
	s := allOurs.start(t, "*,proto=bogus x:1\n* test")
	s.waitReady(t, "/")
	proxyLog := s.Procs["proxy"].output
	if l := proxyLog(); !strings.Contains(l, "skipping bad route line") || !strings.Contains(l, `line=1`) {
		t.Errorf("start-up: bad line not logged with its line:\n%s", l)
	}
	mustWrite(t, filepath.Join(s.Dir, "routes"),
		fmt.Sprintf("*,path_beg=/plain localhost:%d\n*,proto=bogus x:1\n* test\n", be.port()))
	testwait.For(t, 10*time.Second, func() error {
		resp, err := s.Client.Get(s.url("/plain"))
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "plain response\n" {
			return fmt.Errorf("/plain answered %d %q: new route not loaded", resp.StatusCode, b)
		}
		return nil
	})
	testwait.For(t, 5*time.Second, func() error {
		if l := proxyLog(); !strings.Contains(l, "line=2") || !strings.Contains(l, "routes reloaded") {
			return fmt.Errorf("reload: bad line 2 not logged:\n%s", l)
		}
		return nil
	})
}
