package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// rawTarget is a minimal stream target on loopback: it answers every
// request with a chunked 200 and "ok", keeps the connection, and can write a
// line to all of them. reject decides, per request path, to answer 404
// instead; silent never answers.
type rawTarget struct {
	ln     net.Listener
	reject func(path string) bool
	silent bool
	mu     sync.Mutex
	conns  []net.Conn
	srcs   map[string]int
	wg     sync.WaitGroup
}

func newRawTarget(t *testing.T) *rawTarget {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rt := &rawTarget{ln: ln, srcs: map[string]int{}}
	t.Cleanup(rt.close)
	return rt
}

func (rt *rawTarget) serve() {
	rt.wg.Add(1)
	go func() {
		defer rt.wg.Done()
		for {
			c, err := rt.ln.Accept()
			if err != nil {
				return
			}
			rt.wg.Add(1)
			go func() {
				defer rt.wg.Done()
				rt.handle(c)
			}()
		}
	}()
}

func (rt *rawTarget) handle(c net.Conn) {
	req, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || rt.silent {
		_, _ = io.Copy(io.Discard, c) // holds the conn until the client or close ends it
		c.Close()
		return
	}
	path := strings.Fields(req)[1]
	if rt.reject != nil && rt.reject(path) {
		_, _ = io.WriteString(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n") // the test counts what the client saw
		c.Close()
		return
	}
	_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nok\n\r\n") // as above
	rt.mu.Lock()
	rt.conns = append(rt.conns, c)
	host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	rt.srcs[host]++
	rt.mu.Unlock()
}

// broadcast writes one line, as a chunk, to every held connection.
func (rt *rawTarget) broadcast(line string) {
	chunk := fmt.Sprintf("%x\r\n%s\n\r\n", len(line)+1, line)
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, c := range rt.conns {
		_, _ = io.WriteString(c, chunk) // some clients are gone on purpose; closedByPeer counts them
	}
}

// closedByPeer counts held connections whose client has gone.
func (rt *rawTarget) closedByPeer() int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	n := 0
	buf := make([]byte, 1)
	for _, c := range rt.conns {
		_ = c.SetReadDeadline(time.Now().Add(time.Second)) // fails only on a closed conn, which Read reports
		if _, err := c.Read(buf); err != nil && !errors.Is(err, net.ErrClosed) {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				n++
			}
		}
	}
	return n
}

func (rt *rawTarget) close() {
	rt.ln.Close()
	rt.mu.Lock()
	for _, c := range rt.conns {
		c.Close()
	}
	rt.mu.Unlock()
	rt.wg.Wait()
}

// 2,000 connections over 3 worker processes and 2 source addresses: all
// held, every message counted, every connection closed on finish, every
// worker gone after close.
func TestFleetSpreadsOverWorkersAndSources(t *testing.T) {
	const n, k = 2000, 2
	rt := newRawTarget(t)
	rt.serve()
	pool := &srcPool{next: 100}
	o := testClientOpts(t, 700)
	o.PerSrc = 1000
	spec := fleetSpec{Addr: rt.ln.Addr().String(), Path: "/s?ch={i}", N: n, Conc: 30, K: k, Srcs: pool.take(o.srcsFor(n))}
	f, open, err := startFleet(t.Context(), spec, o, zerolog.Nop())
	defer f.close()
	if err != nil || open.Held != n || open.Failed != 0 || open.OpenLat.n != n {
		t.Fatalf("open %+v: %v", open, err)
	}
	ws := append([]*workerProc(nil), f.ws...)
	rt.mu.Lock()
	srcs := fmt.Sprint(rt.srcs)
	rt.mu.Unlock()
	if len(ws) != 3 || srcs != fmt.Sprintf("map[%s:1000 %s:1000]", spec.Srcs[0], spec.Srcs[1]) {
		t.Fatalf("%d workers, sources %s", len(ws), srcs)
	}
	rt.broadcast(probeLine)
	waitStatus(t, f, func(s statusReply) bool { return s.Probed == n && s.LastProbeNs > 0 })
	now := time.Now()
	// The duplicate before the last new message: complete means all read.
	rt.broadcast(messageLine(1, now))
	rt.broadcast(messageLine(1, now))
	rt.broadcast(messageLine(0, now))
	waitStatus(t, f, func(s statusReply) bool { return s.Done == n })
	fin, err := f.finish(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tot := totalsOf(fin.Counts, k)
	if tot.Expected != n*k || tot.Delivered != n*k || tot.Lost != 0 || tot.Dups != n || tot.Reorders != n ||
		fin.Ended != 0 || fin.Lat.n != n*k || fin.SeqCount[0] != n || fin.SeqCount[1] != n || fin.CPU <= 0 {
		t.Fatalf("totals %+v, finish %+v", tot, fin)
	}
	if got := rt.closedByPeer(); got != n {
		t.Fatalf("%d of %d connections closed after finish", got, n)
	}
	f.close()
	for _, w := range ws {
		<-w.exited
		if !w.cmd.ProcessState.Success() {
			t.Fatalf("worker ended with %v, not on end of stdin", w.cmd.ProcessState)
		}
	}
}

// Refused statuses count as failures, and after the failure limit the
// worker stops trying (one open at a time here, so the count is exact).
func TestFleetFailureLimit(t *testing.T) {
	rt := newRawTarget(t)
	rt.reject = func(path string) bool {
		var i int
		if _, err := fmt.Sscanf(path, "/s?ch=%d", &i); err != nil {
			t.Errorf("path %q: %v", path, err)
		}
		return i%2 == 0
	}
	rt.serve()
	spec := fleetSpec{Addr: rt.ln.Addr().String(), Path: "/s?ch={i}", N: 200, Conc: 1, Srcs: (&srcPool{next: 200}).take(1)}
	f, open, err := startFleet(t.Context(), spec, testClientOpts(t, 1000), zerolog.Nop())
	defer f.close()
	if err != nil || open.Failed != 10 || open.Held != 9 || open.Skipped != 181 || open.FirstErr != "status 404" {
		t.Fatalf("open %+v: %v", open, err)
	}
}

func TestFleetRefusedAndTimedOutOpens(t *testing.T) {
	rt := newRawTarget(t)
	addr := rt.ln.Addr().String()
	rt.close() // nothing listens: connect is refused
	o := testClientOpts(t, 1000)
	spec := fleetSpec{Addr: addr, Path: "/s", N: 5, Conc: 5}
	f, open, err := startFleet(t.Context(), spec, o, zerolog.Nop())
	f.close()
	if err != nil || open.Failed != 5 || !strings.Contains(open.FirstErr, "refused") {
		t.Fatalf("refused: %+v: %v", open, err)
	}

	silent := newRawTarget(t)
	silent.silent = true
	silent.serve()
	o.OpenTimeout = 200 * time.Millisecond
	spec = fleetSpec{Addr: silent.ln.Addr().String(), Path: "/s", N: 3, Conc: 3}
	f, open, err = startFleet(t.Context(), spec, o, zerolog.Nop())
	f.close()
	if err != nil || open.Failed != 3 || !strings.Contains(open.FirstErr, "no response within") {
		t.Fatalf("silent: %+v: %v", open, err)
	}
}

// Interrupting an open returns at once, and closing the fleet ends the
// workers through their stdin even though they are still opening.
func TestFleetInterruptedOpen(t *testing.T) {
	rt := newRawTarget(t)
	rt.silent = true
	rt.serve()
	o := testClientOpts(t, 1000)
	o.OpenTimeout = time.Minute
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(300*time.Millisecond, cancel)
	spec := fleetSpec{Addr: rt.ln.Addr().String(), Path: "/s", N: 4, Conc: 4}
	f, _, err := startFleet(ctx, spec, o, zerolog.Nop())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("open: %v", err)
	}
	ws := append([]*workerProc(nil), f.ws...)
	f.close()
	for _, w := range ws {
		if !w.cmd.ProcessState.Success() {
			t.Fatalf("worker ended with %v, not on end of stdin", w.cmd.ProcessState)
		}
	}
}
