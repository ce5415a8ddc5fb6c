package main

import (
	"context"
	"time"

	"github.com/rs/zerolog"
)

// options are the load parameters shared by every scenario.
type options struct {
	Subs, Msgs, ChanMsgs int
	Conc, PubConc, Batch int
	Duration             time.Duration
	Interval             time.Duration // fan-out publish interval; 0: intervalFor's rule
	Drain                time.Duration
	Fanout               []fanoutRun
	ScaleSubs, ScaleMsgs int
	ScaleConnMgrs        int       // ours: connection manager processes for scale
	ScaleLaunch          string    // tiers or runner, for scale
	Rate                 []rateRun // rate: subscribers × msg/s runs
	RateMsgs             int       // rate: messages per run
	Burst                []rateRun // burst: subscribers per run (rate 0)
	BurstMsgs            []int     // burst: messages back to back, per run
	Size, RateBatch      int       // rate and burst: message bytes, items per publish request
	WSSlow               int       // ws-rate: sessions that stop reading after the probe
}

// Fan-out publish interval rule, the same for both targets: 100 µs per
// subscriber (1 s at 10,000), at least 20 ms and at most 5 s. Pushpin takes
// about 0.5-1 s to reach 10,000 subscribers here; a message every 1 s then
// measures one message's fan-out, where a fixed 20 ms would measure a queue
// of 50 messages.
const (
	intervalPerSub = 100 * time.Microsecond
	intervalMin    = 20 * time.Millisecond
	intervalMax    = 5 * time.Second
)

// intervalFor is the publish interval for n subscribers.
func (o options) intervalFor(n int) time.Duration {
	if o.Interval > 0 {
		return o.Interval
	}
	return min(max(intervalMin, time.Duration(n)*intervalPerSub), intervalMax)
}

// env is what a scenario runs against: one started target.
type env struct {
	ctx    context.Context
	target string
	st     *stack
	be     *backend
	rep    *report
	opt    options
	copts  clientOpts
	srcs   *srcPool
	log    zerolog.Logger
}

func (e *env) set(scenario, metric, format string, dir direction, v float64) {
	e.rep.set(e.target, scenario, metric, format, dir, v)
}

// setLatency adds the p50/p90/p99/max rows of a sample, in milliseconds.
func (e *env) setLatency(scenario, what string, s summary) {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	e.set(scenario, what+" p50 (ms)", "%.2f", lowerBetter, ms(s.P50))
	e.set(scenario, what+" p90 (ms)", "%.2f", lowerBetter, ms(s.P90))
	e.set(scenario, what+" p99 (ms)", "%.2f", lowerBetter, ms(s.P99))
	e.set(scenario, what+" max (ms)", "%.2f", lowerBetter, ms(s.Max))
}

// setDelivery adds the counting rows: every expected message is accounted for.
func (e *env) setDelivery(scenario string, t totals) {
	e.set(scenario, "expected (held × messages)", "%.0f", neutral, float64(t.Expected))
	e.set(scenario, "delivered", "%.0f", higherBetter, float64(t.Delivered))
	e.set(scenario, "lost", "%.0f", lowerBetter, float64(t.Lost))
	e.set(scenario, "out of order", "%.0f", lowerBetter, float64(t.Reorders))
	e.set(scenario, "duplicates", "%.0f", lowerBetter, float64(t.Dups+t.Bogus))
}

// waitIdle waits (at most 10 s) until the target's processes used at most
// 2 clock ticks (20 ms) of CPU in each of two 250 ms windows: the previous
// step's work (closing 10,000 connections, a probe fan-out) must not be
// measured as the next step's.
func (e *env) waitIdle() {
	pids := e.st.pids()
	// Not longer: a condure at its fd limit spins on accept for good.
	deadline := time.Now().Add(10 * time.Second)
	prev, quiet := treeCPU(pids), 0
	for quiet < 2 && time.Now().Before(deadline) {
		if sleepCtx(e.ctx, 250*time.Millisecond) != nil {
			return
		}
		now := treeCPU(pids)
		if now-prev <= 2 {
			quiet++
		} else {
			quiet = 0
		}
		prev = now
	}
	if quiet < 2 {
		e.log.Warn().Msg("target still busy after 10 s; measuring anyway")
	}
}
