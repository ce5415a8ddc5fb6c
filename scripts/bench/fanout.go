package main

import (
	"fmt"
	"time"
)

// scenFanout holds Subs subscribers on one channel (stream or SSE mode),
// publishes Msgs numbered messages at Interval and reports publish-to-receive
// latency and how many of Subs×Msgs arrived.
func scenFanout(e *env, mode string) error {
	n, k := e.opt.Subs, e.opt.Msgs
	name := fmt.Sprintf("fanout %s %d×%d", mode, n, k)
	ch := "fan-" + mode
	path := "/stream?ch=" + ch
	if mode == "sse" {
		path = "/sse?ch=" + ch
	}
	holds, _, err := openHolds(e.ctx, e.st.addr(), n, e.opt.Conc, func(int) string { return path })
	if err != nil {
		closeHolds(holds)
		return fmt.Errorf("%d of %d subscribers: %w", len(holds), n, err)
	}
	rc := startReceivers(holds, k)
	defer rc.stop()
	pub := newPublisher(e.st.publishURL(), 1)
	defer pub.close()

	// Subscriptions register asynchronously after the hold: probe until
	// every subscriber has seen one, then publish the numbered messages.
	probe := []item{{ch, frame(mode, probeLine)}}
	if err := waitCount(e.ctx, &rc.probed, int64(n), 60*time.Second, 300*time.Millisecond,
		func() error { return pub.post(probe) }); err != nil {
		return fmt.Errorf("subscribers reached by probe: %d of %d: %w", rc.probed.Load(), n, err)
	}
	start := time.Now()
	for seq := 0; seq < k; seq++ {
		if d := time.Until(start.Add(time.Duration(seq) * e.opt.Interval)); d > 0 {
			time.Sleep(d)
		}
		now := time.Now()
		if err := pub.post([]item{{ch, frame(mode, messageLine(seq, now))}}); err != nil {
			return fmt.Errorf("message %d: %w", seq, err)
		}
	}
	// A timeout here is a finding (losses), not a failure: the tally says.
	_ = waitCount(e.ctx, &rc.done, int64(n), e.opt.Drain, 20*time.Millisecond, nil)
	if err := e.st.alive(); err != nil {
		return err
	}
	closed := rc.ended.Load() // before stop, which closes the rest
	rc.stop()
	t := mergeTallies(rc.tallies, n, k)
	e.set(name, "subscribers", "%.0f", neutral, float64(len(holds)))
	e.setLatency(name, "publish→receive", summarize(t.Lat))
	e.setDelivery(name, t)
	e.set(name, "connections closed by target", "%.0f", lowerBetter, float64(closed))
	return nil
}
