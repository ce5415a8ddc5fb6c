package zurl

import (
	"os"
	"runtime"
)

// LimitProcs runs zurl's Go code on one P unless GOMAXPROCS is set in the
// environment. A request is a few tens of µs of Go work between waits
// (ZeroMQ, backend), so one P serves far more than the proxy sends; a
// second P only adds wake-ups: every hand-off (PULL loop to worker,
// netpoller to worker) readies a goroutine, and with an idle P the runtime
// wakes another thread to spin for it and sleep again, several context
// switches per request. BenchmarkProcess: 12-17 % less CPU per request at
// 1, 8 and 50 in flight on two cores. Blocking system calls and cgo still
// hand the P over, so a stuck send does not stall the rest.
func LimitProcs() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}
