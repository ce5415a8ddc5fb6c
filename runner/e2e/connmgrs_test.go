package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// socketFDs counts a process's socket descriptors.
func socketFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// [runner] connmgr_processes=3 with no other edit: three connection
// managers share the client port (SO_REUSEPORT), and the proxy and handler
// reach all of them, so every stream — whichever process accepted it —
// gets its response and the publish, and each process holds some of them.
func TestRunnerSeveralConnMgrs(t *testing.T) {
	t.Parallel()
	s := newStack(t, "* test")
	s.RunnerConf = "connmgr_processes=3\n"
	s.write(t)
	r := s.startRunner(t)
	s.waitReady(t, "/")
	names := []string{"condure", "condure-2", "condure-3"}
	pids := readPIDs(t, s, names...)
	before := map[string]int{}
	for _, n := range names {
		before[n] = socketFDs(t, pids[n])
	}
	const streams = 30
	var srs []*streamReader
	for i := 0; i < streams; i++ {
		srs = append(srs, openStreamExpect(t, s.Client, s.url("/stream"), "[stream opened]\n"))
	}
	for _, n := range names {
		if got := socketFDs(t, pids[n]) - before[n]; got <= 0 {
			t.Errorf("%s holds %d of the %d streams; SO_REUSEPORT should spread them", n, got, streams)
		}
	}
	publishUntilSeen(t, s, srs[0], "test", "to all\n")
	for i, sr := range srs[1:] {
		if l := sr.next(t, 10*time.Second); l != "to all\n" {
			t.Fatalf("stream %d got %q", i+1, l)
		}
	}
	stopRunner(t, r, pids)
	for name := range pids {
		if _, err := os.Stat(filepath.Join(s.RunDir, name+".pid")); err == nil {
			t.Errorf("%s pid file left behind", name)
		}
	}
}
