package sysmon

import (
	"fmt"
	"os"
	"os/exec"
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

// runSysmonHelper runs the helper with GODEBUG=godebug and returns the
// GODEBUG the re-executed process saw; it fails the test unless that
// process kept the pid it was started with.
func runSysmonHelper(t *testing.T, godebug string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), sysmonHelperEnv+"=1", "GODEBUG="+godebug)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	var pid int
	var got string
	if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "pid=%d godebug=%s", &pid, &got); err != nil {
		t.Fatalf("helper output %q: %v", out, err)
	}
	if pid != cmd.Process.Pid {
		t.Errorf("re-executed as pid %d, started as %d (%q)", pid, cmd.Process.Pid, out)
	}
	return got
}

// The program re-executes itself in place (same pid) with the polled
// sysmon setting added to whatever GODEBUG held, once.
func TestReexec(t *testing.T) {
	if got := runSysmonHelper(t, "madvdontneed=1"); got != "madvdontneed=1,"+polledSysmon {
		t.Errorf("GODEBUG %q", got)
	}
}

// A GODEBUG that sets schedtrace itself is left alone (schedtrace=0 opts out).
func TestReexecOptOut(t *testing.T) {
	if got := runSysmonHelper(t, "schedtrace=0"); got != "schedtrace=0" {
		t.Errorf("GODEBUG %q", got)
	}
}
