package sysmon

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// With sysmonHelperEnv set the test binary plays the program: it re-execs
// itself as main does and reports what the re-executed process sees.
const sysmonHelperEnv = "PUSHPIN_SYSMON_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(sysmonHelperEnv) != "" {
		Reexec()
		fmt.Printf("pid=%d godebug=%s\n", os.Getpid(), os.Getenv("GODEBUG"))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runSysmonHelper(t *testing.T, godebug string) (pid int, got string) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), sysmonHelperEnv+"=1", "GODEBUG="+godebug)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	var line struct{ pid, godebug string }
	f := strings.Fields(strings.TrimSpace(string(out)))
	for _, kv := range f {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "pid":
			line.pid = v
		case "godebug":
			line.godebug = v
		}
	}
	pid, _ = strconv.Atoi(line.pid)
	if pid != cmd.Process.Pid {
		t.Errorf("re-executed as pid %d, started as %d (%q)", pid, cmd.Process.Pid, out)
	}
	return pid, line.godebug
}

// The program re-executes itself in place (same pid) with the polled
// sysmon setting added to whatever GODEBUG held, once.
func TestReexec(t *testing.T) {
	if _, got := runSysmonHelper(t, "madvdontneed=1"); got != "madvdontneed=1,"+polledSysmon {
		t.Errorf("GODEBUG %q", got)
	}
}

// A GODEBUG that sets schedtrace itself is left alone (schedtrace=0 opts out).
func TestReexecOptOut(t *testing.T) {
	if _, got := runSysmonHelper(t, "schedtrace=0"); got != "schedtrace=0" {
		t.Errorf("GODEBUG %q", got)
	}
}
