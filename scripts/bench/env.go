package main

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"
)

// options are the load parameters shared by every scenario.
type options struct {
	Subs, Msgs, ChanMsgs int
	Conc, PubConc, Batch int
	Duration, Interval   time.Duration
	Drain                time.Duration
	Modes                []string
}

// env is what a scenario runs against: one started target.
type env struct {
	ctx    context.Context
	target string
	st     *stack
	be     *backend
	rep    *report
	opt    options
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
	e.set(scenario, fmt.Sprintf("delivered (of %d)", t.Expected), "%.0f", higherBetter, float64(t.Delivered))
	e.set(scenario, "lost", "%.0f", lowerBetter, float64(t.Lost))
	e.set(scenario, "out of order", "%.0f", lowerBetter, float64(t.Reorders))
	e.set(scenario, "duplicates", "%.0f", lowerBetter, float64(t.Dups+t.Bogus))
}
