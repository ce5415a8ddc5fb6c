package connmgr

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// BenchmarkCPU reports the connection manager's own CPU per operation
// (user+sys of this process, getrusage; the clients and fake servers run
// in a child, see loadclient_test.go) and its allocations per operation.
// get: one proxied keep-alive GET (50 clients); held: one stream opened,
// handed off to a second server, and closed (8 clients at a time).
func BenchmarkCPU(b *testing.B) {
	for _, bc := range []struct {
		mode string
		conc int
	}{{"get", 50}, {"held", 8}} {
		b.Run(fmt.Sprintf("%s_c%d", bc.mode, bc.conc), func(b *testing.B) { benchCPU(b, bc.mode, bc.conc) })
	}
}

func benchCPU(b *testing.B, mode string, conc int) {
	base, addr := startServer(b, func(c *Config) { c.MaxConn = 100000 })
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("CONNMGR_BENCH_LOAD=%s %s %s %d", mode, base, addr, conc))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	must(b, err)
	stdout, err := cmd.StdoutPipe()
	must(b, err)
	must(b, cmd.Start())
	b.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			b.Errorf("load child: %v", err)
		}
	})
	lines := bufio.NewScanner(stdout)
	expect := func(want string) {
		b.Helper()
		if !lines.Scan() || lines.Text() != want {
			b.Fatalf("load child said %q (%v), want %q", lines.Text(), lines.Err(), want)
		}
	}
	expect("ready")
	run := func(n int) {
		fmt.Fprintln(stdin, n)
		expect("done")
	}
	run(min(b.N, 200)) // connections opened, pools and maps warm
	time.Sleep(50 * time.Millisecond)
	b.ReportAllocs()
	b.ResetTimer()
	before := cpuTime()
	run(b.N)
	used := cpuTime() - before
	b.StopTimer()
	b.ReportMetric(float64(used.Microseconds())/float64(b.N), "cpu-µs/op")
}

// cpuTime is this process's user+system CPU time (the connection manager
// and, in the benchmarks that have them, the fake servers; clients are a
// child process).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
