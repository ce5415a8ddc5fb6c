package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// workerArg, as the first argument, makes the tool a client worker process
// (wire.go): a process may hold at most 20,000 fds here, so beyond that the
// held connections are spread over several of them.
const workerArg = "-worker"

// workerMain serves the protocol on stdin/stdout until stdin ends.
func workerMain() int {
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05"}).Level(zerolog.InfoLevel).
		With().Timestamp().Int("worker", os.Getpid()).Logger()
	raiseFdLimit(log)
	// Ctrl-C is the coordinator's to handle: it closes our stdin.
	signal.Ignore(os.Interrupt, syscall.SIGTERM)
	wc := newWireConn(os.Stdin, os.Stdout)
	cmds := make(chan wireCmd)
	go func() {
		for {
			var c wireCmd
			if err := wc.recv(&c); err != nil {
				if !errors.Is(err, io.EOF) {
					log.Error().Err(err).Msg("command pipe")
				}
				// The coordinator is gone or done: exiting closes every socket,
				// even in the middle of an open.
				os.Exit(0)
			}
			cmds <- c
		}
	}()
	w := &worker{}
	for c := range cmds {
		if err := wc.send(w.do(c)); err != nil {
			log.Error().Err(err).Msg("reply pipe")
			return 1
		}
	}
	return 0
}

// worker is one worker process's state: its loops, once opened.
type worker struct {
	loops []*loop
	wg    sync.WaitGroup
	done  bool
}

func (w *worker) do(c wireCmd) wireReply {
	switch {
	case c.Op == opOpen && c.Open != nil && w.loops == nil:
		r, err := w.open(c.Open)
		if err != nil {
			return wireReply{Err: err.Error()}
		}
		return wireReply{Open: r}
	case c.Op == opStatus && w.loops != nil:
		return wireReply{Status: w.status()}
	case c.Op == opResume && w.loops != nil && !w.done:
		for _, l := range w.loops {
			l.resume.Store(true)
		}
		return wireReply{Status: w.status()}
	case c.Op == opFinish && w.loops != nil && !w.done:
		return wireReply{Finish: w.finish()}
	}
	return wireReply{Err: fmt.Sprintf("command %q not valid now", c.Op)}
}

// open starts the loops and returns once every connection is held or failed.
func (w *worker) open(o *openCmd) (*openReply, error) {
	dst, srcs, err := o.check()
	if err != nil {
		return nil, err
	}
	n := o.To - o.From
	loops := max(min(o.Loops, n), 1)
	cfg := loopConfig{dst: dst.Addr().As4(), port: int(dst.Port()), path: pathFunc(o.Path),
		conc: (o.Conc + loops - 1) / loops, timeout: time.Duration(o.TimeoutNs), failLimit: o.FailLimit,
		k: o.K, reach: time.Duration(o.ReachNs), ws: o.WS}
	for _, s := range srcs {
		cfg.srcs = append(cfg.srcs, s.As4())
	}
	for li := 0; li < loops; li++ {
		c := cfg
		for i := o.From + li; i < o.To; i += loops {
			c.indexes = append(c.indexes, i)
		}
		l, err := newLoop(c)
		if err != nil {
			w.stopLoops()
			return nil, err
		}
		w.loops = append(w.loops, l)
	}
	for _, l := range w.loops {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			l.run()
		}()
	}
	r := &openReply{}
	lat := newHist()
	for _, l := range w.loops {
		<-l.opened
		r.Held += l.held
		r.Failed += l.failed
		r.Skipped += l.skipped
		if r.FirstErr == "" && l.firstErr != nil {
			r.FirstErr = l.firstErr.Error()
		}
		lat.merge(l.openLat)
	}
	r.OpenLat = lat.wire()
	r.CPUNs, _ = cpuTime()
	return r, nil
}

// cpuTime is the process's user+system CPU time and the system part, in ns.
func cpuTime() (total, sys int64) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano(), ru.Stime.Nano()
}

func (w *worker) status() *statusReply {
	r := &statusReply{}
	for _, l := range w.loops {
		r.Probed += l.probed.Load()
		r.Done += l.done.Load()
		r.Ended += l.ended.Load()
		r.LastProbeNs = max(r.LastProbeNs, l.lastProbe.Load())
		r.CloseFrames += l.closeFrames.Load()
		r.Delivered += l.delivered.Load()
	}
	return r
}

func (w *worker) stopLoops() {
	for _, l := range w.loops {
		l.stop.Store(true)
	}
	w.wg.Wait()
	for _, l := range w.loops {
		l.shut()
	}
}

// finish stops the loops, adds up their tallies and closes the connections.
func (w *worker) finish() *finishReply {
	for _, l := range w.loops {
		l.stop.Store(true)
	}
	w.wg.Wait()
	w.done = true
	r := &finishReply{}
	r.RecvCPUNs, _ = cpuTime()
	lat := newHist()
	for i, l := range w.loops {
		r.Counts.add(l.result())
		r.Ended += l.ended.Load()
		r.Probes += l.probes.Load()
		lat.merge(l.lat)
		r.LastMsgNs = max(r.LastMsgNs, l.lastMsg)
		if i == 0 {
			r.SeqMax = make([]int64, len(l.seqMax))
			r.SeqWithin = make([]uint64, len(l.seqMax))
			r.SeqCount = make([]uint64, len(l.seqMax))
		}
		for s := range l.seqMax {
			r.SeqMax[s] = max(r.SeqMax[s], l.seqMax[s])
			r.SeqWithin[s] += l.seqWithin[s]
			r.SeqCount[s] += l.seqCount[s]
		}
		if l.loopErr != nil {
			r.LoopErr = l.loopErr.Error()
		}
		if r.CloseCode == 0 && l.closeCode != 0 {
			r.CloseCode, r.CloseReason = l.closeCode, l.closeReason
		}
	}
	w.closeWebSockets()
	for _, l := range w.loops {
		l.shut()
	}
	r.Lat = lat.wire()
	r.CPUNs, r.SysNs = cpuTime()
	return r
}
