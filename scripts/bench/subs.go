package main

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// openFleet opens n holds on path (template, see fleetSpec) in worker
// processes. Connections the target would not hold are a finding, reported
// in the table; only none held at all is an error.
func (e *env) openFleet(name, path string, n, k int) (*fleet, openResult, error) {
	return e.openFleetWS(name, path, n, k, wsConfig{})
}

// openFleetWS is openFleet with WebSocket sessions when wsc.On. Those also
// get rows of sessions opened and failed: a target that refuses WebSocket
// (501) shows as 0 opened, n failed, next to the error.
func (e *env) openFleetWS(name, path string, n, k int, wsc wsConfig) (*fleet, openResult, error) {
	spec := fleetSpec{Addr: e.st.addr(), Path: path, N: n, Conc: e.opt.Conc, K: k,
		Srcs: e.srcs.take(e.copts.srcsFor(n)), WS: wsc}
	f, res, err := startFleet(e.ctx, spec, e.copts, e.log)
	if wsc.On && err == nil {
		e.set(name, "WebSocket sessions opened", "%.0f", higherBetter, float64(res.Held))
		e.set(name, "WebSocket sessions failed (or not tried after 10 failures)", "%.0f", lowerBetter,
			float64(res.Failed+res.Skipped))
	}
	if err != nil {
		f.close()
		return nil, res, fmt.Errorf("opening %d holds: %w", n, err)
	}
	e.log.Info().Str("scenario", name).Int("held", res.Held).Int("of", n).Int("failed", res.Failed).
		Int("workers", len(f.ws)).Dur("took", res.Elapsed.Round(time.Millisecond)).Msg("holds open")
	if res.Held < n {
		e.rep.note(e.target, name, fmt.Sprintf("%d of %d connections held (%d failed, %d not tried after the failures): %s",
			res.Held, n, res.Failed, res.Skipped, res.FirstErr))
	}
	if res.Held == 0 {
		f.close()
		return nil, res, fmt.Errorf("no hold of %d opened: %s", n, res.FirstErr)
	}
	return f, res, nil
}

// probeAll publishes a probe until every held subscriber has seen one
// (subscriptions register asynchronously after the hold). It publishes again
// only when deliveries stall, not on a fixed tick: a probe to 100,000
// subscribers takes a while, and stacking probes would load the target
// before the measurement. It then waits for the probes to stop arriving and
// the target to go idle, and returns how many subscribers were reached.
func (e *env) probeAll(name string, f *fleet, held int, publish func() error) (int, error) {
	const stall = time.Second
	start := time.Now()
	// A subscriber no probe reached after 15 s of re-publishing is not
	// coming; 100,000 get more for the first probe's own fan-out.
	deadline := start.Add(15*time.Second + time.Duration(held)*time.Millisecond)
	var lastPub, lastGrowth time.Time
	reached := int64(-1)
	for {
		st, err := f.status(e.ctx)
		if err != nil {
			return 0, err
		}
		now := time.Now()
		if st.Probed != reached {
			reached, lastGrowth = st.Probed, now
		}
		if reached >= int64(held) {
			break
		}
		if now.After(deadline) {
			e.rep.note(e.target, name, fmt.Sprintf("only %d of %d subscribers reached by a probe within %v",
				reached, held, now.Sub(start).Round(time.Second)))
			break
		}
		if lastPub.IsZero() || (now.Sub(lastGrowth) > stall && now.Sub(lastPub) > stall) {
			if err := publish(); err != nil {
				return 0, fmt.Errorf("probe: %w", err)
			}
			lastPub = now
		}
		if err := sleepCtx(e.ctx, 100*time.Millisecond); err != nil {
			return 0, err
		}
	}
	// Probes still being delivered (a second one to everybody) would
	// compete with the first numbered message.
	for quiet := time.Now().Add(15 * time.Second); time.Now().Before(quiet); {
		st, err := f.status(e.ctx)
		if err != nil {
			return 0, err
		}
		if time.Since(time.Unix(0, st.LastProbeNs)) > 500*time.Millisecond {
			break
		}
		if err := sleepCtx(e.ctx, 100*time.Millisecond); err != nil {
			return 0, err
		}
	}
	e.waitIdle()
	return int(reached), nil
}

// wsQuiet ends the drain of WebSocket sessions once no message arrived for
// this long: what Pushpin 1.36 does not send a WebSocket client at once it
// has dropped, so waiting the whole -drain for it would only make every
// ws run 15 s longer.
const wsQuiet = 3 * time.Second

// drain waits until every held subscriber has all its messages, all the
// ones still open do and the rest were closed, or Drain passes (WebSocket
// sessions: or nothing arrived for wsQuiet).
func (e *env) drain(f *fleet, held int) error {
	deadline := time.Now().Add(e.opt.Drain)
	last, lastChange := int64(-1), time.Now()
	for time.Now().Before(deadline) {
		st, err := f.status(e.ctx)
		if err != nil {
			return err
		}
		if st.Done >= int64(held) || st.Done+st.Ended >= int64(held) {
			return nil
		}
		if st.Delivered != last {
			last, lastChange = st.Delivered, time.Now()
		}
		if f.websocket && time.Since(lastChange) > wsQuiet {
			e.log.Debug().Int64("delivered", st.Delivered).Msg("no WebSocket message for a while: drain over")
			return nil
		}
		if err := sleepCtx(e.ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// collect waits for the last deliveries (a timeout is a finding — losses —
// not a failure: the tally says), calls drained if set, checks the target
// is still up, and takes the fleet's final tallies.
func (e *env) collect(f *fleet, held int, drained func()) (finishResult, error) {
	if err := e.drain(f, held); err != nil {
		return finishResult{}, err
	}
	if drained != nil {
		drained()
	}
	if err := e.st.alive(); err != nil {
		return finishResult{}, err
	}
	return f.finish(e.ctx)
}

// oneChannel probes until every subscriber of f holds channel ch, then
// publishes k numbered messages to it (framed for mode), one every
// interval, and collects the tallies. It reports how many subscribers the
// probe reached. mark, if set, is called once the probes are done and the
// numbered series is about to start, and again once it is delivered
// (before the fleet closes its connections).
func (e *env) oneChannel(name string, f *fleet, held int, ch, mode string, k int, interval time.Duration, mark func()) (int, finishResult, error) {
	pub := newPublisher(e.st.publishURL(), 1)
	pub.ws = mode == "ws"
	defer pub.close()
	probe := []item{{ch, frame(mode, probeLine)}}
	reached, err := e.probeAll(name, f, held, func() error { return pub.post(probe) })
	if err != nil {
		return 0, finishResult{}, err
	}
	if mark != nil {
		mark()
	}
	err = e.publishSeries(k, interval, func(seq int, now time.Time) error {
		return pub.post([]item{{ch, frame(mode, messageLine(seq, now))}})
	})
	if err != nil {
		return 0, finishResult{}, err
	}
	fin, err := e.collect(f, held, mark)
	return reached, fin, err
}

// publishSeries publishes k numbered messages on a schedule of one every
// interval (not one interval after the previous answer), so a slow publish
// API does not stretch the series.
func (e *env) publishSeries(k int, interval time.Duration, publish func(seq int, now time.Time) error) error {
	start := time.Now()
	for seq := 0; seq < k; seq++ {
		if err := sleepCtx(e.ctx, time.Until(start.Add(time.Duration(seq)*interval))); err != nil {
			return err
		}
		if err := publish(seq, time.Now()); err != nil {
			return fmt.Errorf("message %d: %w", seq, err)
		}
	}
	return nil
}

// setFinish adds the rows every delivery scenario has: latency, how fast
// each message reached everybody, the counts, and the tool's own cost.
func (e *env) setFinish(name string, open openResult, fin finishResult, k int, perMessage bool) {
	e.setLatency(name, "publish→receive", fin.Lat.summary())
	if perMessage && len(fin.SeqMax) > 0 {
		e.set(name, "slowest delivery, median message (ms)", "%.1f", lowerBetter, float64(medianSlowest(fin))/1e6)
	}
	t := totalsOf(fin.Counts, k)
	if t.Expected > 0 {
		var within uint64
		for _, w := range fin.SeqWithin {
			within += w
		}
		e.set(name, fmt.Sprintf("delivered within %v (%%)", e.copts.Reach), "%.2f", higherBetter,
			100*float64(within)/float64(t.Expected))
	}
	e.setDelivery(name, t)
	e.set(name, "connections closed by target", "%.0f", lowerBetter, float64(fin.Ended))
	// The tool's own cost, to show it is small next to the target's: all of
	// it, and the receiving part (after the opens, before the closes) per
	// line received, probes included.
	e.set(name, "load tool CPU, client workers (s)", "%.1f", neutral, fin.CPU.Seconds())
	if lines := int64(t.Delivered+t.Dups+t.Bogus) + fin.Probes; lines > 0 {
		e.set(name, "load tool CPU per delivery (µs)", "%.1f", neutral, float64(fin.RecvCPU-open.CPU)/float64(lines)/1e3)
	}
	e.log.Info().Str("scenario", name).Dur("cpu", fin.CPU.Round(time.Millisecond)).Dur("sys", fin.Sys.Round(time.Millisecond)).
		Dur("opening", open.CPU.Round(time.Millisecond)).Msg("client workers' CPU")
	if fin.LoopErr != "" {
		e.rep.note(e.target, name, "client event loop stopped early: "+fin.LoopErr)
	}
}

// medianSlowest is, over the messages, the median of each one's slowest
// delivery: with no losses, how long a message takes to reach everybody.
func medianSlowest(fin finishResult) time.Duration {
	d := slices.Clone(fin.SeqMax)
	slices.Sort(d)
	return d[(len(d)-1)/2]
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
