package main

import (
	"fmt"
	"time"
)

// scenHolds opens Subs stream holds (one channel each) as fast as Conc
// dialers allow. connect reports the opening rate; memory reports the
// target's memory idle (before) and with every hold open.
func scenHolds(e *env, connect, memory bool) error {
	n := e.opt.Subs
	var idle memUse
	if memory {
		var err error
		if idle, err = measureMem(e.st.pids()); err != nil {
			return fmt.Errorf("idle memory: %w", err)
		}
	}
	t0 := time.Now()
	holds, lat, err := openHolds(e.ctx, e.st.addr(), n, e.opt.Conc, func(i int) string {
		return fmt.Sprintf("/stream?ch=held-%d", i)
	})
	elapsed := time.Since(t0)
	defer closeHolds(holds)
	if err != nil {
		return fmt.Errorf("%d of %d holds opened: %w", len(holds), n, err)
	}
	if connect {
		name := fmt.Sprintf("connect n=%d c=%d", n, e.opt.Conc)
		e.set(name, "held connections opened/s", "%.0f", higherBetter, float64(len(holds))/elapsed.Seconds())
		e.setLatency(name, "open-to-first-byte", summarize(lat))
	}
	if !memory {
		return nil
	}
	// Let the tiers finish their per-session work (subscriptions, stats)
	// before reading memory.
	time.Sleep(time.Second)
	if err := e.st.alive(); err != nil {
		return err
	}
	held, err := measureMem(e.st.pids())
	if err != nil {
		return fmt.Errorf("memory with %d holds: %w", n, err)
	}
	name := fmt.Sprintf("memory n=%d", n)
	mb := func(b int64) float64 { return float64(b) / (1 << 20) }
	e.set(name, "processes", "%.0f", neutral, float64(held.Procs))
	e.set(name, "RSS idle (MiB)", "%.1f", lowerBetter, mb(idle.RSS))
	e.set(name, "RSS held (MiB)", "%.1f", lowerBetter, mb(held.RSS))
	e.set(name, "RSS per held conn (KiB)", "%.1f", lowerBetter, float64(held.RSS-idle.RSS)/float64(n)/1024)
	e.set(name, "PSS idle (MiB)", "%.1f", lowerBetter, mb(idle.PSS))
	e.set(name, "PSS per held conn (KiB)", "%.1f", lowerBetter, float64(held.PSS-idle.PSS)/float64(n)/1024)
	return nil
}
