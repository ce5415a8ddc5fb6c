package main

import (
	"fmt"
	"time"
)

// loadResult is the outcome of a closed-loop GET load.
type loadResult struct {
	OK, Errors int
	Elapsed    time.Duration
	Lat        []time.Duration
	FirstErr   error
}

// scenPassthrough measures proxied GETs, and the same load straight at the
// backend so the table shows what the proxy costs.
func scenPassthrough(e *env) error {
	name := fmt.Sprintf("passthrough c=%d", e.opt.Conc)
	dself0, _ := cpuTime()
	direct := loadGET(e.ctx, "http://"+e.be.addr()+"/plain", e.opt.Conc, e.opt.Duration)
	dself1, _ := cpuTime()
	dself := dself1 - dself0
	if err := e.st.alive(); err != nil {
		return err
	}
	cpu0 := cpuByRole(e.st.pids())
	self0, _ := cpuTime() // the load tool's clients and the backend
	proxied := loadGET(e.ctx, e.st.url("/plain"), e.opt.Conc, e.opt.Duration)
	cpu1 := cpuByRole(e.st.pids())
	self1, _ := cpuTime()
	if proxied.OK == 0 {
		return fmt.Errorf("no proxied request succeeded: %v", proxied.FirstErr)
	}
	ps, ds := summarize(proxied.Lat), summarize(direct.Lat)
	e.set(name, "proxied req/s", "%.0f", higherBetter, float64(proxied.OK)/proxied.Elapsed.Seconds())
	e.setLatency(name, "proxied latency", ps)
	e.set(name, "proxied errors", "%.0f", lowerBetter, float64(proxied.Errors))
	e.set(name, "direct-to-backend req/s", "%.0f", higherBetter, float64(direct.OK)/direct.Elapsed.Seconds())
	e.set(name, "direct-to-backend latency p50 (ms)", "%.2f", lowerBetter, float64(ds.P50)/1e6)
	if direct.OK > 0 {
		e.set(name, "direct-to-backend load tool + backend CPU per request (µs)", "%.1f", lowerBetter, float64(dself)/1e3/float64(direct.OK))
	}
	e.set(name, "proxy overhead p50 (ms)", "%.2f", lowerBetter, float64(ps.P50-ds.P50)/1e6)
	e.setCPU(name, "proxied", cpu0, cpu1, proxied.OK)
	if proxied.OK > 0 {
		e.set(name, "load tool + backend CPU per proxied request (µs)", "%.1f", lowerBetter,
			float64(self1-self0)/1e3/float64(proxied.OK))
	}
	if proxied.Errors > 0 {
		e.log.Warn().Int("errors", proxied.Errors).AnErr("first", proxied.FirstErr).Msg("passthrough errors")
	}
	return nil
}

// setCPU reports the target's CPU per operation (a request, a hold opened), in all and per program,
// from /proc tick counts taken around the measured load: unlike ops/s, it
// hardly moves when something else takes the CPU for a while.
func (e *env) setCPU(name, what string, before, after map[string]int64, ops int) {
	if ops <= 0 {
		return
	}
	per := func(ticks int64) float64 { return float64(ticks) * 1e6 / clockTicks / float64(ops) }
	var total int64
	for r, t := range after {
		total += t - before[r]
	}
	e.set(name, what+": target CPU per op (µs)", "%.1f", lowerBetter, per(total))
	for _, r := range roleOrder {
		if t, ok := after[r]; ok {
			e.set(name, fmt.Sprintf("%s: %s CPU per op (µs)", what, r), "%.1f", lowerBetter, per(t-before[r]))
		}
	}
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux).
const clockTicks = 100
