package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The floor scenario measures no target: it is what the kernel alone
// costs on this machine to put one small chunk on each of N held loopback
// TCP connections, the work every fan-out of one message to N subscribers
// has to do whatever program does it. The tool itself answers the holds
// (floorServer), then writes each round with raw send(2) calls, one per
// socket, from 1 and then 2 threads; the readers are the tool's usual
// worker processes (epoll, kernel receive timestamps), so the round's
// slowest delivery is measured as it is for a target.

func init() { allScenarios = append(allScenarios, "floor") }

// floorWriters are the writer thread counts measured, in order.
var floorWriters = []int{1, 2}

// floorRounds is how many rounds each writer count does.
const floorRounds = 10

// runFloor runs the floor scenario if selected and not yet in the report
// (it measures the machine, not a target: once per run, whatever the
// targets) and returns sel without it.
func runFloor(e *env, sel []string) []string {
	if !slices.Contains(sel, "floor") {
		return sel
	}
	name := floorName(e.opt.Subs)
	if !slices.ContainsFunc(e.rep.rows, func(r *row) bool { return r.scenario == name }) {
		e.log.Info().Str("scenario", "floor").Msg("running")
		t0 := time.Now()
		if err := scenFloor(e, e.opt.Subs); err != nil {
			e.log.Error().Err(err).Str("scenario", "floor").Msg("failed")
			e.rep.fail(targetOurs, name, err)
		} else {
			e.log.Info().Str("scenario", "floor").Str("took", time.Since(t0).Round(time.Millisecond).String()).Msg("done")
		}
	}
	return slices.DeleteFunc(slices.Clone(sel), func(s string) bool { return s == "floor" })
}

func floorName(n int) string {
	return fmt.Sprintf("floor: raw loopback writes, no target, %d×%d", n, floorRounds*len(floorWriters))
}

// scenFloor holds n connections to the tool's own listener and measures
// the rounds. Its figures go in the "ours" column: they belong to the
// machine, and the ratio column stays empty.
func scenFloor(e *env, n int) error {
	name := floorName(n)
	srv, err := newFloorServer()
	if err != nil {
		return err
	}
	defer srv.close()
	k := floorRounds * len(floorWriters)
	spec := fleetSpec{Addr: srv.addr(), Path: "/floor", N: n, Conc: e.opt.Conc, K: k, Srcs: e.srcs.take(e.copts.srcsFor(n))}
	f, open, err := startFleet(e.ctx, spec, e.copts, e.log)
	defer f.close()
	if err != nil {
		return fmt.Errorf("opening %d connections: %w", n, err)
	}
	if open.Held < n {
		return fmt.Errorf("%d of %d connections held: %s", open.Held, n, open.FirstErr)
	}
	fds, err := srv.waitHeld(n, 10*time.Second)
	if err != nil {
		return err
	}
	// One round every interval (the fan-out rule, 100 µs a socket): the
	// readers have read the previous round before the next one starts.
	interval := e.opt.intervalFor(n)
	seq := 0
	for _, threads := range floorWriters {
		var walls []time.Duration
		var cpu time.Duration
		for r := 0; r < floorRounds; r++ {
			if err := sleepCtx(e.ctx, interval); err != nil {
				return err
			}
			wall, c, err := writeRound(fds, threads, chunkLine(frame("stream", messageLine(seq, time.Now()))))
			if err != nil {
				return fmt.Errorf("round %d: %w", seq, err)
			}
			walls, cpu = append(walls, wall), cpu+c
			seq++
		}
		slices.Sort(walls)
		what := fmt.Sprintf("%d writer thread", threads)
		if threads > 1 {
			what += "s"
		}
		e.rep.set(targetOurs, name, what+": round wall time p50 (ms)", "%.1f", lowerBetter, float64(walls[len(walls)/2])/1e6)
		e.rep.set(targetOurs, name, what+": round wall time max (ms)", "%.1f", lowerBetter, float64(walls[len(walls)-1])/1e6)
		e.rep.set(targetOurs, name, what+": write CPU per socket (µs)", "%.2f", lowerBetter,
			float64(cpu)/1e3/float64(floorRounds*n))
	}
	if err := e.drain(f, n); err != nil {
		return err
	}
	fin, err := f.finish(e.ctx)
	if err != nil {
		return err
	}
	e.rep.set(targetOurs, name, "sockets", "%.0f", neutral, float64(n))
	e.rep.set(targetOurs, name, "read CPU per socket and round (µs)", "%.2f", lowerBetter,
		float64(fin.RecvCPU-open.CPU)/1e3/float64(k*n))
	for i, threads := range floorWriters {
		slow := slices.Clone(fin.SeqMax[i*floorRounds : (i+1)*floorRounds])
		slices.Sort(slow)
		e.rep.set(targetOurs, name, fmt.Sprintf("%d writer thread(s): slowest delivery, median round (ms)", threads), "%.1f",
			lowerBetter, float64(slow[len(slow)/2])/1e6)
	}
	tot := totalsOf(fin.Counts, k)
	e.rep.set(targetOurs, name, "delivered of sockets×rounds", "%.0f", higherBetter, float64(tot.Delivered))
	if tot.Expected != k*n || tot.Lost != 0 || tot.Reorders != 0 || tot.Dups != 0 {
		return fmt.Errorf("chunks: %+v, want %d delivered in order", tot, k*n)
	}
	return nil
}

// chunkLine frames line (with its newline) as one HTTP/1.1 chunk.
func chunkLine(line string) []byte {
	return []byte(strconv.FormatInt(int64(len(line)), 16) + "\r\n" + line + "\r\n")
}

// writeRound writes b once to every fd from threads OS threads, each a
// contiguous share, and returns the wall time until the last write and the
// writer threads' CPU time (user+system).
func writeRound(fds []int, threads int, b []byte) (time.Duration, time.Duration, error) {
	var wg sync.WaitGroup
	cpu := make([]time.Duration, threads)
	errs := make([]error, threads)
	per := (len(fds) + threads - 1) / threads
	start := make(chan struct{})
	for t := 0; t < threads; t++ {
		share := fds[min(t*per, len(fds)):min((t+1)*per, len(fds))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			<-start
			c0 := threadCPU()
			errs[t] = writeAll(share, b)
			cpu[t] = threadCPU() - c0
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	wall := time.Since(t0)
	var total time.Duration
	for _, c := range cpu {
		total += c
	}
	return wall, total, errors.Join(errs...)
}

// writeAll is one raw send(2) of b to each fd: no runtime bookkeeping,
// as the connection manager writes (send skips write(2)'s file layer).
// The sockets are idle and b small, so a short write is an error rather
// than something to retry.
func writeAll(fds []int, b []byte) error {
	for _, fd := range fds {
		n, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
			unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, 0, 0)
		if e != 0 {
			return fmt.Errorf("write fd %d: %w", fd, e)
		}
		if int(n) != len(b) {
			return fmt.Errorf("write fd %d: %d of %d bytes", fd, n, len(b))
		}
	}
	return nil
}

// threadCPU is the calling thread's CPU time.
func threadCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// floorServer accepts the fleet's connections, answers each request with
// a chunked 200 and the "ok" line the workers wait for, and keeps the
// connections for the rounds.
type floorServer struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []*net.TCPConn
	fds   []int
	err   error
	wg    sync.WaitGroup
}

const floorHead = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nok\n\r\n"

func newFloorServer() (*floorServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("floor listener: %w", err)
	}
	s := &floorServer{ln: ln}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

func (s *floorServer) addr() string { return s.ln.Addr().String() }

func (s *floorServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // closed
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.serve(c.(*net.TCPConn)); err != nil {
				c.Close()
				s.mu.Lock()
				s.err = errors.Join(s.err, err)
				s.mu.Unlock()
			}
		}()
	}
}

// serve reads the request head, answers it and keeps the connection.
func (s *floorServer) serve(c *net.TCPConn) error {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(c, 512)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("floor request: %w", err)
		}
		if len(line) <= 2 {
			break
		}
	}
	if _, err := c.Write([]byte(floorHead)); err != nil {
		return fmt.Errorf("floor response: %w", err)
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var fd int
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return err
	}
	s.mu.Lock()
	s.conns, s.fds = append(s.conns, c), append(s.fds, fd)
	s.mu.Unlock()
	return nil
}

// waitHeld returns the descriptors once n connections are answered.
func (s *floorServer) waitHeld(n int, timeout time.Duration) ([]int, error) {
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		fds, err := slices.Clone(s.fds), s.err
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if len(fds) >= n {
			return fds, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("floor: %d of %d connections answered", len(fds), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// close closes the listener and every kept connection (with a reset, so
// no TIME_WAIT is left for the next scenario) and waits for the goroutines.
func (s *floorServer) close() {
	s.ln.Close()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.SetLinger(0)
		c.Close()
	}
	s.conns, s.fds = nil, nil
}
