package zurl

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/proto/zhttp"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

// The process benchmark runs zurl in a child process (this test binary,
// re-executed with procChildEnv set) so that its CPU time can be read from
// /proc apart from the requester's and the backend's: zurl-cpu-µs/op is
// what the server alone (Go and libzmq's I/O threads) spends per request.
const (
	procChildEnv      = "ZURL_BENCH_CHILD"      // the socket directory
	procProfileEnv    = "ZURL_BENCH_PROFILE"    // child: CPU profile file (optional)
	procMemProfileEnv = "ZURL_BENCH_MEMPROFILE" // child: allocation profile file (optional)
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(procChildEnv); dir != "" {
		os.Exit(runChild(dir))
	}
	os.Exit(m.Run())
}

func procConfig(dir string) configs.ZurlConfig {
	cfg := configs.DefaultZurlConfig()
	cfg.InstanceID = "zurl-bench"
	cfg.InSpec = "ipc://" + filepath.Join(dir, "in")
	cfg.InStreamSpec = "ipc://" + filepath.Join(dir, "in-stream")
	cfg.OutSpec = "ipc://" + filepath.Join(dir, "out")
	return cfg
}

// runChild serves as pushpin-zurl does (default timers, LimitProcs) until
// SIGTERM.
func runChild(dir string) int {
	LimitProcs()
	if f := os.Getenv(procProfileEnv); f != "" {
		out, err := os.Create(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := pprof.StartCPUProfile(out); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if f := os.Getenv(procMemProfileEnv); f != "" {
		runtime.MemProfileRate = 512
		defer func() {
			if out, err := os.Create(f); err == nil {
				if err := pprof.Lookup("allocs").WriteTo(out, 0); err != nil {
					fmt.Fprintln(os.Stderr, err)
				}
				out.Close()
			}
		}()
	}
	s, err := New(procConfig(dir), zerolog.Nop())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	// SIGUSR1: write the allocation count, for the parent's allocs/op.
	usr := make(chan os.Signal, 1)
	signal.Notify(usr, syscall.SIGUSR1)
	go func() {
		for range usr {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			err := os.WriteFile(filepath.Join(dir, "mallocs.tmp"), []byte(strconv.FormatUint(ms.Mallocs, 10)), 0o600)
			if err == nil {
				err = os.Rename(filepath.Join(dir, "mallocs.tmp"), filepath.Join(dir, "mallocs"))
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, err) // the parent, waiting for the file, shows it
			}
		}
	}()
	if err := s.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// procCPU is a process's user+system time (/proc/PID/stat, in clock ticks
// of 10 ms: the benchmark runs long enough for that to be fine).
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// BenchmarkProcess sends small GETs through a zurl child process to a
// loopback backend, conc at a time (the proxy keeps many in flight), as
// Pushpin's proxy sends them: complete requests, so the deferred ack is in
// play and a prompt response is the only packet back.
func BenchmarkProcess(b *testing.B) {
	for _, conc := range []int{1, 8, 50} {
		b.Run(fmt.Sprintf("conc_%d", conc), func(b *testing.B) { benchProcess(b, conc) })
	}
}

func benchProcess(b *testing.B, conc int) {
	body := []byte("hello from the bench backend\n")
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		backendWrite(b, w, body)
	}))
	defer be.Close()
	dir, err := os.MkdirTemp("", "zb")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), procChildEnv+"="+dir)
	for _, k := range []string{procProfileEnv, procMemProfileEnv} {
		if f := os.Getenv(k); f != "" {
			cmd.Env = append(cmd.Env, k+"="+f)
		}
	}
	if g := os.Getenv("ZURL_BENCH_GOMAXPROCS"); g != "" {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+g)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			b.Error(err)
		}
		if err := cmd.Wait(); err != nil {
			b.Errorf("zurl child: %v", err)
		}
	}()
	cfg := procConfig(dir)
	sub := connectSock(b, zmq.Sub, zmq.Options{RecvTimeout: 100, Subscribe: []string{"proxy "}}, cfg.OutSpec)
	defer sub.Close()
	push := connectSock(b, zmq.Push, zmq.Options{}, cfg.InSpec)
	defer push.Close()
	n := 0
	send := func() {
		p := &zhttp.Packet{From: "proxy", ID: "r" + strconv.Itoa(n), HasSeq: true, Stream: true, Method: "GET",
			URI: be.URL + "/plain", Credits: 200000, HasCredits: true, IgnorePolicies: true, Ext: zhttp.Ext{Multi: true},
			Headers: zhttp.Headers{{Name: "Host", Value: "example.com"}, {Name: "User-Agent", Value: "Go-http-client/1.1"},
				{Name: "X-Forwarded-For", Value: "127.0.0.1"}, {Name: "X-Forwarded-Proto", Value: "http"}}}
		n++
		if err := push.Send(p.AppendMessage(nil)); err != nil {
			b.Fatal(err)
		}
	}
	// recvDone waits for one complete response.
	recvDone := func() {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			msg, err := sub.Recv()
			if err != nil {
				continue // timeout: the child may still be starting
			}
			_, m, err := zhttp.SplitPub(msg[0])
			if err != nil {
				b.Fatal(err)
			}
			p, err := zhttp.ParseMessage(m)
			if err != nil {
				b.Fatal(err)
			}
			if p.Type == zhttp.Error {
				b.Fatalf("error %s", p.Condition)
			}
			if p.HasCode && !p.More {
				if p.Code != 200 || string(p.Body) != string(body) {
					b.Fatalf("response %d %q", p.Code, p.Body)
				}
				return
			}
		}
		b.Fatal("no response within 10 s")
	}
	// The PUB drops replies until the SUB's subscription reached it: probe
	// until one comes back.
	for probed, give := false, time.Now().Add(10*time.Second); !probed; {
		if time.Now().After(give) {
			_ = cmd.Process.Signal(syscall.SIGQUIT) // its goroutines, on our stderr; only a diagnostic
			time.Sleep(time.Second)
			b.Fatal("zurl child never answered a probe")
		}
		send()
		deadline := time.Now().Add(300 * time.Millisecond)
		for !probed && time.Now().Before(deadline) {
			if msg, err := sub.Recv(); err == nil {
				_, m, _ := zhttp.SplitPub(msg[0])
				p, _ := zhttp.ParseMessage(m)
				probed = p != nil && p.HasCode && !p.More
			}
		}
	}
	// Warm up: connections pooled, workers grown.
	for i := 0; i < 200; i++ {
		send()
		recvDone()
	}
	for i := 0; i < conc; i++ {
		send()
	}
	for i := 0; i < 2*conc; i++ {
		recvDone()
		send()
	}
	m0 := childMallocs(b, cmd.Process, dir)
	var r0 syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r0); err != nil {
		b.Fatal(err)
	}
	c0 := procCPU(b, cmd.Process.Pid)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		recvDone()
		send()
	}
	b.StopTimer()
	c1 := procCPU(b, cmd.Process.Pid)
	var r1 syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r1); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < conc; i++ {
		recvDone()
	}
	m1 := childMallocs(b, cmd.Process, dir)
	b.ReportMetric(float64(m1-m0)/float64(b.N), "zurl-allocs/op")
	b.ReportMetric(float64((c1-c0).Microseconds())/float64(b.N), "zurl-cpu-µs/op")
	self := time.Duration(syscall.TimevalToNsec(r1.Utime) - syscall.TimevalToNsec(r0.Utime) +
		syscall.TimevalToNsec(r1.Stime) - syscall.TimevalToNsec(r0.Stime))
	b.ReportMetric(float64(self.Microseconds())/float64(b.N), "rig-cpu-µs/op")
}

// childMallocs asks the child for its allocation count (SIGUSR1).
func childMallocs(b *testing.B, p *os.Process, dir string) uint64 {
	f := filepath.Join(dir, "mallocs")
	os.Remove(f)
	if err := p.Signal(syscall.SIGUSR1); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if raw, err := os.ReadFile(f); err == nil {
			n, _ := strconv.ParseUint(string(raw), 10, 64)
			return n
		}
	}
	b.Fatal("child did not report its allocations")
	return 0
}
