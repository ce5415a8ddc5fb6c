package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// clientOpts are the load tool's own client settings.
type clientOpts struct {
	Exe         string // run with workerArg: os.Executable, or the test binary
	PerWorker   int    // held connections per worker process (fd limit 20,000)
	PerSrc      int    // held connections per source address (ephemeral ports)
	Loops       int    // event loops per worker (default 1)
	OpenTimeout time.Duration
	Reach       time.Duration // "delivered within" threshold
}

// fleetSpec is one set of held connections: N subscribers, their paths, how
// many opens at once (over all workers) and how many messages each expects.
type fleetSpec struct {
	Addr    string
	Path    string // "{i}" replaced by the subscriber index
	N, Conc int
	K       int
	Srcs    []string // source addresses (srcPool)
	WS      wsConfig // WebSocket sessions instead of stream holds
}

// fleet is the worker processes holding one fleetSpec's connections.
type fleet struct {
	ws        []*workerProc
	log       zerolog.Logger
	websocket bool // its connections are WebSocket sessions
}

type workerProc struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	wc       *wireConn
	exited   chan struct{}
	from, to int
}

// srcPool hands out loopback source addresses, fresh ones for every fleet,
// so that one scenario's closed connections never collide with the next
// one's (both use the same target port).
type srcPool struct{ next int }

func (p *srcPool) take(n int) []string {
	out := make([]string, n)
	for i := range out {
		c := p.next
		p.next++
		out[i] = fmt.Sprintf("127.0.%d.%d", c/250%256, 2+c%250)
	}
	return out
}

// srcsFor is how many source addresses n connections need.
func (o clientOpts) srcsFor(n int) int { return max((n+o.PerSrc-1)/o.PerSrc, 1) }

// startFleet starts the workers and has them open their shares; the
// returned fleet must be closed whatever happens next.
func startFleet(ctx context.Context, spec fleetSpec, o clientOpts, log zerolog.Logger) (*fleet, openResult, error) {
	nw := max((spec.N+o.PerWorker-1)/o.PerWorker, 1)
	f := &fleet{log: log, websocket: spec.WS.On}
	per := (spec.N + nw - 1) / nw
	for from := 0; from < spec.N; from += per {
		w, err := startWorker(o.Exe)
		if err != nil {
			f.close()
			return nil, openResult{}, err
		}
		w.from, w.to = from, min(from+per, spec.N)
		f.ws = append(f.ws, w)
	}
	log.Debug().Int("workers", len(f.ws)).Int("n", spec.N).Strs("srcs", spec.Srcs).Msg("fleet started")
	t0 := time.Now()
	replies, err := f.call(ctx, func(w *workerProc) wireCmd {
		share := w.to - w.from
		// One loop per worker unless asked: fewer, busier loops batch more
		// deliveries per wake-up, and the workers already spread over the CPUs.
		loops := max(o.Loops, 1)
		return wireCmd{Op: opOpen, Open: &openCmd{
			Addr: spec.Addr, Srcs: spec.Srcs, Path: spec.Path, From: w.from, To: w.to,
			Conc: max((spec.Conc+len(f.ws)-1)/len(f.ws), 1), Loops: loops, K: spec.K,
			TimeoutNs: int64(o.OpenTimeout), FailLimit: max(10, share/loops/1000), ReachNs: int64(o.Reach),
			WS: spec.WS,
		}}
	})
	if err != nil {
		return f, openResult{}, err
	}
	res, err := mergeOpen(replies)
	res.Elapsed = time.Since(t0)
	return f, res, err
}

func startWorker(exe string) (*workerProc, error) {
	cmd := exec.Command(exe, workerArg)
	cmd.Stderr = os.Stderr
	// Own process group: Ctrl-C reaches only the coordinator, which then
	// closes the workers' stdin. Pdeathsig covers a coordinator that is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("worker stdin: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("worker stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting worker %s: %w", exe, err)
	}
	w := &workerProc{cmd: cmd, stdin: stdin, wc: newWireConn(stdout, stdin), exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(w.exited)
	}()
	return w, nil
}

// call sends every worker its command and collects the replies in worker
// order. On ctx's end it returns at once; close then stops the workers.
func (f *fleet) call(ctx context.Context, cmd func(*workerProc) wireCmd) ([]wireReply, error) {
	replies := make([]wireReply, len(f.ws))
	errs := make([]error, len(f.ws))
	var wg sync.WaitGroup
	for i, w := range f.ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := cmd(w)
			if err := w.wc.send(c); err != nil {
				errs[i] = err
				return
			}
			if err := w.wc.recv(&replies[i]); err != nil {
				errs[i] = fmt.Errorf("worker %d (%s): %w", w.cmd.Process.Pid, c.Op, err)
				return
			}
			if replies[i].Err != "" {
				errs[i] = fmt.Errorf("worker %d (%s): %s", w.cmd.Process.Pid, c.Op, replies[i].Err)
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return replies, errors.Join(errs...)
}

// openResult is what a fleet's open achieved.
type openResult struct {
	Held, Failed, Skipped int
	FirstErr              string
	OpenLat               *hist
	Elapsed               time.Duration
	CPU                   time.Duration // the workers' CPU time up to here
}

func mergeOpen(replies []wireReply) (openResult, error) {
	r := openResult{OpenLat: newHist()}
	for _, rep := range replies {
		o := rep.Open
		if o == nil {
			return r, errors.New("open: reply without result")
		}
		r.Held += o.Held
		r.Failed += o.Failed
		r.Skipped += o.Skipped
		if r.FirstErr == "" {
			r.FirstErr = o.FirstErr
		}
		h, err := o.OpenLat.hist()
		if err != nil {
			return r, fmt.Errorf("open: %w", err)
		}
		r.OpenLat.merge(h)
		r.CPU += time.Duration(o.CPUNs)
	}
	return r, nil
}

func (f *fleet) status(ctx context.Context) (statusReply, error) {
	return f.statusOp(ctx, opStatus)
}

// resume has the workers read their paused connections again.
func (f *fleet) resume(ctx context.Context) (statusReply, error) {
	return f.statusOp(ctx, opResume)
}

func (f *fleet) statusOp(ctx context.Context, op string) (statusReply, error) {
	replies, err := f.call(ctx, func(*workerProc) wireCmd { return wireCmd{Op: op} })
	if err != nil {
		return statusReply{}, err
	}
	var s statusReply
	for _, r := range replies {
		if r.Status == nil {
			return s, errors.New("status: reply without result")
		}
		s.Probed += r.Status.Probed
		s.Done += r.Status.Done
		s.Ended += r.Status.Ended
		s.LastProbeNs = max(s.LastProbeNs, r.Status.LastProbeNs)
		s.CloseFrames += r.Status.CloseFrames
		s.Delivered += r.Status.Delivered
	}
	return s, nil
}

// finishResult is the fleet's final count, over every worker.
type finishResult struct {
	Counts      counts
	Ended       int64 // holds the target closed
	Lat         *hist
	SeqMax      []time.Duration
	SeqWithin   []uint64
	SeqCount    []uint64
	LastMsg     time.Time
	CPU, Sys    time.Duration // the workers' CPU time, and its system part
	RecvCPU     time.Duration // CPU time up to closing the connections
	Probes      int64
	LoopErr     string
	CloseCode   int // the first close frame's code, and reason
	CloseReason string
}

// finish collects the tallies; the workers close their connections.
func (f *fleet) finish(ctx context.Context) (finishResult, error) {
	replies, err := f.call(ctx, func(*workerProc) wireCmd { return wireCmd{Op: opFinish} })
	if err != nil {
		return finishResult{}, err
	}
	return mergeFinish(replies)
}

func mergeFinish(replies []wireReply) (finishResult, error) {
	r := finishResult{Lat: newHist()}
	var last int64
	for _, rep := range replies {
		x := rep.Finish
		if x == nil {
			return r, errors.New("finish: reply without result")
		}
		if len(x.SeqWithin) != len(x.SeqMax) || len(x.SeqCount) != len(x.SeqMax) ||
			(r.SeqMax != nil && len(x.SeqMax) != len(r.SeqMax)) {
			return r, errors.New("finish: per-message lists of different lengths")
		}
		if r.SeqMax == nil {
			r.SeqMax = make([]time.Duration, len(x.SeqMax))
			r.SeqWithin = make([]uint64, len(x.SeqMax))
			r.SeqCount = make([]uint64, len(x.SeqMax))
		}
		r.Counts.add(x.Counts)
		r.Ended += x.Ended
		h, err := x.Lat.hist()
		if err != nil {
			return r, fmt.Errorf("finish: %w", err)
		}
		r.Lat.merge(h)
		for s := range x.SeqMax {
			r.SeqMax[s] = max(r.SeqMax[s], time.Duration(x.SeqMax[s]))
			r.SeqWithin[s] += x.SeqWithin[s]
			r.SeqCount[s] += x.SeqCount[s]
		}
		last = max(last, x.LastMsgNs)
		r.CPU += time.Duration(x.CPUNs)
		r.RecvCPU += time.Duration(x.RecvCPUNs)
		r.Probes += x.Probes
		r.Sys += time.Duration(x.SysNs)
		if r.LoopErr == "" {
			r.LoopErr = x.LoopErr
		}
		if r.CloseCode == 0 {
			r.CloseCode, r.CloseReason = x.CloseCode, x.CloseReason
		}
	}
	if last > 0 {
		r.LastMsg = time.Unix(0, last)
	}
	return r, nil
}

// close ends every worker: end of stdin makes it exit (closing its
// sockets); one that does not within 5 s is killed.
func (f *fleet) close() {
	if f == nil {
		return
	}
	for _, w := range f.ws {
		w.stdin.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, w := range f.ws {
		select {
		case <-w.exited:
		case <-time.After(time.Until(deadline)):
			_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
			<-w.exited
		}
	}
	f.ws = nil
}
