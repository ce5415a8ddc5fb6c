package main

import (
	"fmt"
)

// scenHolds opens Subs stream holds (one channel each) as fast as Conc
// opens in flight allow. connect reports the opening rate; memory reports
// the target's memory idle (before) and with every hold open.
func scenHolds(e *env, connect, memory bool) error {
	n := e.opt.Subs
	var idle memUse
	if memory {
		var err error
		if idle, err = measureMem(e.st.pids()); err != nil {
			return fmt.Errorf("idle memory: %w", err)
		}
	}
	name := fmt.Sprintf("connect n=%d c=%d", n, e.opt.Conc)
	cpu0 := cpuByRole(e.st.pids())
	f, open, err := e.openFleet(name, "/stream?ch=held-{i}", n, 0)
	if err != nil {
		return err
	}
	defer f.close()
	if connect {
		e.setOpen(name, open)
		e.setCPU(name, "opening", cpu0, cpuByRole(e.st.pids()), open.Held)
	}
	if memory {
		if err := e.setMemory(fmt.Sprintf("memory n=%d", n), idle, open.Held); err != nil {
			return err
		}
	}
	_, err = f.finish(e.ctx)
	return err
}

// setOpen adds the rows of opening holds.
func (e *env) setOpen(name string, open openResult) {
	e.set(name, "held connections opened/s", "%.0f", higherBetter, float64(open.Held)/open.Elapsed.Seconds())
	e.set(name, "held", "%.0f", higherBetter, float64(open.Held))
	e.setLatency(name, "open-to-first-byte", open.OpenLat.summary())
}

// setMemory lets the target settle with held connections open, then adds
// its memory rows against idle: totals, and per program (connection
// managers, proxy, handler, zurl, runner) so the cost shows where it is.
func (e *env) setMemory(name string, idle memUse, held int) error {
	// The tiers finish their per-session work (subscriptions, stats) first.
	e.waitIdle()
	if err := e.st.alive(); err != nil {
		return err
	}
	now, err := measureMem(e.st.pids())
	if err != nil {
		return fmt.Errorf("memory with %d holds: %w", held, err)
	}
	mb := func(b int64) float64 { return float64(b) / (1 << 20) }
	perConn := func(d int64) float64 { return float64(d) / float64(max(held, 1)) / 1024 }
	e.set(name, "processes", "%.0f", neutral, float64(now.Procs))
	e.set(name, "RSS idle (MiB)", "%.1f", lowerBetter, mb(idle.RSS))
	e.set(name, "RSS held (MiB)", "%.1f", lowerBetter, mb(now.RSS))
	e.set(name, "RSS per held conn (KiB)", "%.1f", lowerBetter, perConn(now.RSS-idle.RSS))
	e.set(name, "PSS idle (MiB)", "%.1f", lowerBetter, mb(idle.PSS))
	e.set(name, "PSS per held conn (KiB)", "%.1f", lowerBetter, perConn(now.PSS-idle.PSS))
	for _, role := range now.roles() {
		r, was := now.ByRole[role], idle.ByRole[role]
		e.set(name, role+": processes", "%.0f", neutral, float64(r.Procs))
		e.set(name, role+": RSS held (MiB)", "%.1f", lowerBetter, mb(r.RSS))
		e.set(name, role+": RSS per held conn (KiB)", "%.2f", lowerBetter, perConn(r.RSS-was.RSS))
	}
	return nil
}
