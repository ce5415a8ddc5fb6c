package main

import (
	"cmp"
	"fmt"
	"strconv"
	"time"
)

// The WebSocket scenarios. Every session is a WebSocket on the over_http
// route (target.go) to the backend's WebSocket-over-HTTP endpoint
// (wsbackend.go), opened by the worker processes' event loops (wsloop.go).
// ws fan-out is a mode of the fanout scenario (fanout.go), ws-rate the rate
// scenario over WebSockets (rate.go).

// scenWSOpen opens Subs WebSocket sessions (-conc in flight), each closing
// again (close frame, 1000) once its welcome arrived: sessions opened a
// second, the open latency (connect to the first message), failures, and
// whether every close was answered.
func scenWSOpen(e *env) error {
	n := e.opt.Subs
	name := fmt.Sprintf("ws-open n=%d c=%d", n, e.opt.Conc)
	cpu0 := cpuByRole(e.st.pids())
	opens0, closes0 := e.be.ws.opens.Load(), e.be.ws.closes.Load()
	f, open, err := e.openFleetWS(name, wsPathPrefix+wsKindOpen+"?ch=wsopen-{i}", n, 0, wsConfig{On: true, CloseAfterOpen: true})
	if err != nil {
		return err
	}
	defer f.close()
	e.set(name, "WebSocket sessions opened/s", "%.0f", higherBetter, float64(open.Held)/open.Elapsed.Seconds())
	e.setLatency(name, "open (connect to first message)", open.OpenLat.summary())
	e.setCPU(name, "opening", cpu0, cpuByRole(e.st.pids()), open.Held)
	// The close handshakes of the last sessions are still under way.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		st, err := f.status(e.ctx)
		if err != nil {
			return err
		}
		if st.Ended >= int64(open.Held) {
			break
		}
		if err := sleepCtx(e.ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	fin, err := f.finish(e.ctx)
	if err != nil {
		return err
	}
	e.set(name, "closes answered with a close frame", "%.0f", higherBetter, float64(fin.Counts.ClosedFrame))
	e.set(name, "closes not answered (closed without a close frame)", "%.0f", lowerBetter, float64(fin.Counts.ClosedOther))
	e.set(name, "backend: OPEN requests", "%.0f", neutral, float64(e.be.ws.opens.Load()-opens0))
	e.wsSettle(name, wsKindOpen)
	e.set(name, "backend: CLOSE requests", "%.0f", neutral, float64(e.be.ws.closes.Load()-closes0))
	return nil
}

// scenWSMemory is the memory scenario with idle WebSocket sessions (one
// channel each) instead of stream holds.
func scenWSMemory(e *env) error {
	n := e.opt.Subs
	idle, err := measureMem(e.st.pids())
	if err != nil {
		return fmt.Errorf("idle memory: %w", err)
	}
	name := fmt.Sprintf("ws-memory n=%d", n)
	f, open, err := e.openFleetWS(name, wsPathPrefix+wsKindIdle+"?ch=wsidle-{i}", n, 0, wsConfig{On: true})
	if err != nil {
		return err
	}
	defer f.close()
	if err := e.setMemory(name, idle, open.Held); err != nil {
		return err
	}
	if _, err = f.finish(e.ctx); err != nil {
		return err
	}
	e.wsSettle(name, wsKindIdle)
	return nil
}

// wsSettleMax bounds the wait for a target to end its sessions at the
// backend once their clients are gone; wsSettleQuiet ends it early once
// none ended for that long. Pushpin 1.36 retries a refused DISCONNECT after
// 1, 2, 4, 8 and 16 s (+ up to 1 s), so a shorter quiet would take a pause
// between its retries for the end.
const (
	wsSettleMax   = 120 * time.Second
	wsSettleQuiet = 20 * time.Second
)

// wsSettle waits until the backend has seen a CLOSE or DISCONNECT for every
// session of kind ("" for all) it opened, i.e. the target has done what the
// clients' going away costs it (the workers close them: closeWebSockets).
// Without this the next scenario could measure that aftermath: after a
// 10,000-session fleet was reset at once, Pushpin 1.36 sent DISCONNECTs
// for over a minute and answered new sessions 502 meanwhile. With name, rows of that scenario say how many
// sessions ended at the backend and how long it took; sessions that never
// end are a note, and written off so that later scenarios do not wait for
// them.
func (e *env) wsSettle(name, kind string) {
	ws := e.be.ws
	start := ws.pending(kind)
	t0, last, lastChange := time.Now(), start, time.Now()
	for time.Since(t0) < wsSettleMax {
		n := ws.pending(kind)
		if n <= 0 {
			break
		}
		if n != last {
			e.log.Debug().Int64("pending", n).Dur("after", time.Since(t0).Round(time.Millisecond)).Msg("sessions not ended at the backend")
			last, lastChange = n, time.Now()
		}
		if time.Since(lastChange) > wsSettleQuiet {
			break
		}
		if sleepCtx(e.ctx, 50*time.Millisecond) != nil {
			return
		}
	}
	left := ws.pending(kind)
	took := lastChange.Sub(t0)
	if left == 0 {
		took = time.Since(t0)
	}
	if start > 0 {
		e.log.Info().Str("scenario", name).Int64("sessions", start).Int64("not_ended", left).Int64("backend_refused", ws.refused.Load()).
			Dur("took", took.Round(time.Millisecond)).Msg("sessions ended at the backend after their clients went")
	}
	if name != "" {
		e.set(name, "after the clients closed: sessions still open at the backend", "%.0f", lowerBetter, float64(start))
		e.set(name, "after the clients closed: sessions never ended at the backend", "%.0f", lowerBetter, float64(left))
		if start > 0 {
			e.set(name, "after the clients closed: time until the last session ended (s)", "%.1f", lowerBetter, took.Seconds())
		}
	}
	if left > 0 {
		why := fmt.Sprintf("none for %v after the last one did", wsSettleQuiet)
		if time.Since(lastChange) <= wsSettleQuiet {
			why = fmt.Sprintf("still ending after %v", wsSettleMax)
		}
		e.rep.note(e.target, cmp.Or(name, "after a failed scenario"),
			fmt.Sprintf("%d of %d sessions not ended at the backend (no CLOSE or DISCONNECT; %s)", left, start, why))
		for kn, k := range ws.kinds {
			if kind == "" || kind == kn {
				k.writtenOff += max(k.opens.Load()-k.ended.Load()-k.writtenOff, 0)
			}
		}
	}
}

// setWSEnds adds the rows only WebSocket delivery has: where missing
// messages went. A client must get every message, or be closed with a close
// frame; a gap while the connection stays open is the failure to avoid.
func (e *env) setWSEnds(name, prefix string, fin finishResult, k int) {
	c := fin.Counts
	if exp := c.Receivers * k; exp > 0 {
		e.set(name, prefix+"delivered (%)", "%.2f", higherBetter, 100*float64(c.Delivered)/float64(exp))
	}
	e.set(name, prefix+"receivers with a silent gap", "%.0f", lowerBetter, float64(c.GapRecv))
	e.set(name, prefix+"messages missing before a later one (gaps)", "%.0f", lowerBetter, float64(c.Holes))
	e.set(name, prefix+"messages missing at the end, connection open", "%.0f", lowerBetter, float64(c.OpenMissing))
	e.set(name, prefix+"closed by the target with a close frame", "%.0f", neutral, float64(c.ClosedFrame))
	e.set(name, prefix+"closed by the target without a close frame", "%.0f", lowerBetter, float64(c.ClosedOther))
	if fin.CloseCode != 0 {
		e.rep.text(e.target, name, prefix+"close frame (first): code, reason", strconv.Itoa(fin.CloseCode)+" "+strconv.Quote(fin.CloseReason))
	}
}

// slowFleet is ws-rate's clients that cannot keep up.
type slowFleet struct {
	f    *fleet
	held int
}

// slowRcvBuf is the slow clients' SO_RCVBUF (the kernel doubles it): a
// small window, so the target's writes back up after a few KB.
const slowRcvBuf = 4096

// openSlow opens -ws-slow sessions on path that read until their first
// probe, then stop (publishing probes until they all have one).
func (e *env) openSlow(name, path string, k int, probe func() error) (*slowFleet, error) {
	f, open, err := e.openFleetWS(name+" slow", path, e.opt.WSSlow, k, wsConfig{On: true, Pause: true, RcvBuf: slowRcvBuf})
	if err != nil {
		return nil, fmt.Errorf("slow clients: %w", err)
	}
	if _, err := e.probeAll(name, f, open.Held, probe); err != nil {
		f.close()
		return nil, fmt.Errorf("slow clients: %w", err)
	}
	return &slowFleet{f: f, held: open.Held}, nil
}

// finishSlow reads the slow clients again once the others have everything,
// and reports what they got: every message, a clean close (close frame
// after the messages it got, no gap), or a gap.
func (e *env) finishSlow(name string, s *slowFleet, k int) error {
	if _, err := s.f.resume(e.ctx); err != nil {
		return err
	}
	// What was queued for them arrives at once; a target that dropped
	// messages without closing leaves them open and incomplete: wait a
	// little for nothing more.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		st, err := s.f.status(e.ctx)
		if err != nil {
			return err
		}
		if st.Done+st.Ended >= int64(s.held) {
			break
		}
		if err := sleepCtx(e.ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	fin, err := s.f.finish(e.ctx)
	if err != nil {
		return err
	}
	p := "slow clients: "
	e.set(name, p+"held (stop reading after the probe, SO_RCVBUF 4 KB)", "%.0f", neutral, float64(s.held))
	e.set(name, p+"messages received", "%.0f", neutral, float64(fin.Counts.Delivered))
	e.setWSEnds(name, p, fin, k)
	e.wsSettle(name, wsKindRate)
	return nil
}
