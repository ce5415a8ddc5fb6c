package connmgr

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/pushpin-go/pushpin/internal/testwait"
	"github.com/pushpin-go/pushpin/proto/zhttp"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	must(t, err)
	return len(ents)
}

// rawClient is a client socket made with syscalls, so that the client side
// costs no Go heap and the server side can be measured alone.
type rawClient int

func rawDial(t *testing.T, addr string) rawClient {
	t.Helper()
	var port int
	if _, err := fmt.Sscanf(addr[strings.LastIndexByte(addr, ':')+1:], "%d", &port); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	must(t, err)
	for {
		err = unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}})
		if err != unix.EINTR {
			break
		}
	}
	must(t, err)
	must(t, unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5}))
	return rawClient(fd)
}

func (c rawClient) request(t *testing.T, f *fakeServer, body string) {
	t.Helper()
	if _, err := rawWrite(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	p := f.first()
	f.send(&zhttp.Packet{ID: p.ID, Seq: 0, Code: 200, HasCode: true, Reason: "OK", HasHeaders: true, Body: []byte(body)})
	want := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	var got []byte
	buf := make([]byte, 256)
	for len(got) < len(want) {
		n, err := unix.Read(int(c), buf)
		if err == unix.EINTR {
			continue // the Go runtime's preemption signals interrupt raw syscalls
		}
		if n <= 0 {
			if os.Getenv("CONNMGR_DEBUG") != "" {
				buf := make([]byte, 1<<22)
				buf = buf[:runtime.Stack(buf, true)]
				if err := os.WriteFile("/tmp/cx/stacks.txt", buf, 0o644); err != nil {
					t.Logf("writing stacks: %v", err)
				}
			}
			t.Fatalf("read: %v after %q", err, got)
		}
		got = append(got, buf[:n]...)
	}
	check(t, "response", string(got), want)
}

func rawWrite(c rawClient, s string) (int, error) {
	for {
		n, err := unix.Write(int(c), []byte(s))
		if err != unix.EINTR {
			return n, err
		}
	}
}

func (c rawClient) close() { unix.Close(int(c)) }

// rss is the process's resident set (bytes), for reports only: it also
// counts the GC's headroom and the test's own client side.
// steadyCounts waits until the goroutine and fd counts hold still between
// two looks (connections still being set up or torn down, and descriptors
// earlier tests' ZeroMQ sockets close lazily, move them) and returns them.
func steadyCounts(t *testing.T) (goroutines, fds int) {
	t.Helper()
	goroutines, fds = -1, -1
	testwait.For(t, 10*time.Second, func() error {
		g, fd := runtime.NumGoroutine(), openFDs(t)
		if g != goroutines || fd != fds {
			goroutines, fds = g, fd
			return fmt.Errorf("goroutines %d, fds %d still changing", g, fd)
		}
		return nil
	})
	return goroutines, fds
}

func rss(t *testing.T) float64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	must(t, err)
	var size, res int64
	_, err = fmt.Sscan(string(b), &size, &res)
	must(t, err)
	return float64(res * int64(os.Getpagesize()))
}

func memInUse() (heap, stack uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, m.StackInuse
}

// TestIdleConnectionCost opens N keep-alive connections, each after one
// request, and reports the server-side memory per idle connection. It fails
// if idle connections own goroutines, or if one costs more than a read
// buffer would alone, which is what holding a buffer per idle connection
// would cost.
func TestIdleConnectionCost(t *testing.T) {
	ours(t, "measures this process")
	heap := connectionCost(t, "idle connection", "fakeproxy", func(c rawClient, f *fakeServer) {
		c.request(t, f, "ok")
	}, false)
	if heap > float64(DefaultBufferSize)/2 {
		t.Errorf("heap per idle connection %.0f B: buffers are being held", heap)
	}
}

// connectionCost opens n connections to a fresh server, each brought to
// the state under test by open, and returns the server's heap per
// connection; it logs heap, stack, goroutines and RSS per connection and
// fails if the goroutine count grows with the connections. A warm-up
// connection goes through open first; with warmCancel its session's
// cancel is awaited, so the baseline holds no warm-up session.
func connectionCost(t *testing.T, what, serverID string, open func(rawClient, *fakeServer), warmCancel bool) float64 {
	t.Helper()
	const n = 2000
	base, addr := startServer(t, nil)
	f := newFakeServer(t, base, serverID, true)
	warm := rawDial(t, addr)
	open(warm, f)
	warm.close()
	for warmCancel && f.later().Type != zhttp.Cancel {
	}
	g0, _ := steadyCounts(t)
	h0, s0 := memInUse()
	r0 := rss(t)
	clients := make([]rawClient, 0, n)
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()
	for i := 0; i < n; i++ {
		c := rawDial(t, addr)
		clients = append(clients, c)
		open(c, f)
	}
	g1, _ := steadyCounts(t)
	h1, s1 := memInUse()
	heap := (float64(h1) - float64(h0)) / n
	stack := (float64(s1) - float64(s0)) / n
	t.Logf("per %s: heap %.0f B, stack %.0f B, total %.0f B; goroutines %.3f; process RSS %+.0f B",
		what, heap, stack, heap+stack, float64(g1-g0)/n, (rss(t)-r0)/n)
	if g1-g0 > 10 {
		t.Errorf("%d more goroutines for %d of %s: connections must not own goroutines", g1-g0, n, what)
	}
	return heap
}

// hold opens a held stream on c: the server answers with a streaming
// response head and a first chunk, which the client reads.
func (c rawClient) hold(t *testing.T, f *fakeServer) string {
	t.Helper()
	if _, err := rawWrite(c, "GET /stream HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	p := f.first()
	f.send(&zhttp.Packet{ID: p.ID, Seq: 0, Ext: zhttp.Ext{Multi: true}, Code: 200, HasCode: true, Reason: "OK",
		HasHeaders: true, Body: []byte("start\n"), More: true})
	want := "HTTP/1.1 200 OK\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nstart\n\r\n"
	c.expect(t, want)
	return p.ID
}

// expect reads exactly len(want) bytes and compares them.
func (c rawClient) expect(t *testing.T, want string) {
	t.Helper()
	got := make([]byte, 0, len(want))
	buf := make([]byte, len(want))
	for len(got) < len(want) {
		n, err := unix.Read(int(c), buf[:len(want)-len(got)])
		if err == unix.EINTR {
			continue
		}
		if n <= 0 {
			t.Fatalf("read: %v after %d of %d bytes (%s)", err, len(got), len(want), clip(got))
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != want {
		t.Fatalf("received %s, want %s", clip(got), clip([]byte(want)))
	}
}

// clip shortens long test output.
func clip(b []byte) string {
	if len(b) <= 200 {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%q…(%d bytes)…%q", b[:100], len(b), b[len(b)-100:])
}

// TestHeldConnectionCost holds N streams (response head written, waiting
// for published data) and reports the server-side memory and goroutines
// per held connection. A held stream must not cost a goroutine: the count
// may not grow with N.
func TestHeldConnectionCost(t *testing.T) {
	ours(t, "measures this process")
	// The warm-up stream's cancel is awaited: after it the server is back to baseline.
	heap := connectionCost(t, "held connection", "fakehandler", func(c rawClient, f *fakeServer) {
		c.hold(t, f)
	}, true)
	if heap > float64(DefaultBufferSize)/2 {
		t.Errorf("heap per held connection %.0f B: buffers are being held", heap)
	}
}

// TestConnectionsLeakNothing opens 1,000 connections (idle, mid-head,
// and mid-response) and closes them: goroutines and fds return to baseline.
func TestConnectionsLeakNothing(t *testing.T) {
	ours(t, "measures this process")
	base, addr := startServer(t, nil)
	f := newFakeServer(t, base, "fakeproxy", true)
	// Warm up with a connection the server closes (EOF seen here means
	// its descriptor is gone), so the baseline counts no warm-up fd.
	wc, wbr := dial(t, addr)
	_, _ = wc.Write([]byte("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"))
	p := f.first()
	f.send(&zhttp.Packet{ID: p.ID, Seq: 0, Code: 200, HasCode: true, Reason: "OK", HasHeaders: true})
	readHead(t, wbr)
	expectEOF(t, wbr)
	wc.Close()
	// The baseline is taken once the counts hold still: descriptors that
	// earlier tests' ZeroMQ sockets close lazily would otherwise be counted
	// in it and leave before the 2,000 below are.
	g0, fd0 := steadyCounts(t)
	var clients []rawClient
	for i := 0; i < 1000; i++ {
		c := rawDial(t, addr)
		clients = append(clients, c)
		switch i % 4 {
		case 1:
			_, _ = rawWrite(c, ("GET / HTTP/1.1\r\nHo"))
		case 2:
			_, _ = rawWrite(c, ("GET /stream HTTP/1.1\r\nHost: h\r\n\r\n"))
			p := f.first()
			f.send(&zhttp.Packet{ID: p.ID, Seq: 0, Code: 200, HasCode: true, Reason: "OK", HasHeaders: true, More: true})
		case 3:
			c.request(t, f, "x")
		}
	}
	// Every connection accepted: our 1,000 client fds and the server's 1,000.
	testwait.For(t, 5*time.Second, func() error {
		if fd := openFDs(t); fd < fd0+2000 {
			return fmt.Errorf("%d fds, want ≥ %d", fd, fd0+2000)
		}
		return nil
	})
	for _, c := range clients {
		c.close()
	}
	// The 250 streaming sessions send cancel; drain them.
	cancels := 0
	for cancels < 250 {
		if q := f.later(); q.Type == zhttp.Cancel {
			cancels++
		}
	}
	testwait.For(t, 10*time.Second, func() error {
		g, fd := runtime.NumGoroutine(), openFDs(t)
		if g > g0 || fd > fd0 {
			return fmt.Errorf("goroutines %d (baseline %d), fds %d (baseline %d)", g, g0, fd, fd0)
		}
		return nil
	})
}

// TestShutdownLeavesNothing stops a server holding idle and held
// connections: Run returns, every client sees its connection closed, and
// goroutines and fds return to what they were before the server started.
func TestShutdownLeavesNothing(t *testing.T) {
	ours(t, "measures this process")
	// The ZeroMQ context (its threads and their fds) lives as long as the
	// process: make sure it exists before the baseline.
	z, zerr := zmq.New(zmq.Pub, zmq.Options{})
	must(t, zerr)
	z.Close()
	g0, fd0 := runtime.NumGoroutine(), openFDs(t)
	base := "ipc://" + t.TempDir() + "/c"
	s, err := New(Config{Listen: []Listen{{Addr: "127.0.0.1:0", Stream: true}}, ZClient: []string{base}},
		zerolog.New(zerolog.NewTestWriter(t)).Level(testLogLevel))
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-s.Ready()
	addr := s.Addrs()[0].String()
	f := newFakeServer(t, base, "fakehandler", true)
	var clients []rawClient
	for i := 0; i < 100; i++ {
		c := rawDial(t, addr)
		clients = append(clients, c)
		if i%2 == 0 {
			c.hold(t, f)
		} else {
			c.request(t, f, "idle")
		}
	}
	cancel()
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	for _, c := range clients {
		var b [64]byte
		for {
			n, err := unix.Read(int(c), b[:])
			if err == unix.EINTR {
				continue
			}
			if n != 0 || err != nil {
				t.Fatalf("client: read %d, %v; want EOF", n, err)
			}
			break
		}
		c.close()
	}
	f.pull.Close()
	f.router.Close()
	f.pub.Close()
	f.pull, f.router, f.pub = nil, nil, nil
	testwait.For(t, 5*time.Second, func() error {
		if g, fd := runtime.NumGoroutine(), openFDs(t); g > g0 || fd > fd0 {
			return fmt.Errorf("goroutines %d (before %d), fds %d (before %d)", g, g0, fd, fd0)
		}
		return nil
	})
}
