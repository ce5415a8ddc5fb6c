// Package sysmon keeps the Go runtime's sysmon thread polling in our
// cgo-heavy programs (every ZeroMQ call is a cgo call).
package sysmon

import (
	"os"
	"strings"
	"syscall"
)

// polledSysmon is the GODEBUG setting that keeps the runtime's sysmon
// thread polling (20 µs, backing off to 10 ms) instead of sleeping whenever
// the process is idle. Asleep, it is woken by the first syscall or cgo call
// of every busy spell (a futex wake, then a burst of 20 µs naps): our
// programs go idle between most requests and make ZeroMQ (cgo) calls in
// each, and that cost the proxy 15 % of its CPU. A schedtrace period of
// 2^31-1 ms (24.8 days) is never reached, except that a host up longer
// than that prints one SCHED line at start.
const polledSysmon = "schedtrace=2147483647"

// Reexec re-executes the program (same pid, arguments and
// environment) with polledSysmon added to GODEBUG, unless GODEBUG already
// says something about schedtrace (schedtrace=0 opts out). If the exec
// fails the program simply runs as it is.
func Reexec() {
	gd := os.Getenv("GODEBUG")
	if strings.Contains(gd, "schedtrace=") {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	if gd != "" {
		gd += ","
	}
	env := make([]string, 0, len(os.Environ())+1)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "GODEBUG=") {
			env = append(env, e)
		}
	}
	env = append(env, "GODEBUG="+gd+polledSysmon)
	_ = syscall.Exec(exe, os.Args, env)
}
