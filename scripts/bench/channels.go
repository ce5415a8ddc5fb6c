package main

import (
	"fmt"
	"sync"
	"time"
)

// scenChannels holds Subs subscribers on Subs channels (one each) and
// publishes ChanMsgs numbered messages per channel, Batch items per request,
// PubConc requests in flight. Each channel is published by one publisher so
// its messages leave in order.
func scenChannels(e *env) error {
	n, k := e.opt.Subs, e.opt.ChanMsgs
	name := fmt.Sprintf("channels %d×%d", n, k)
	chName := func(i int) string { return fmt.Sprintf("c-%d", i) }
	holds, _, err := openHolds(e.ctx, e.st.addr(), n, e.opt.Conc, func(i int) string { return "/stream?ch=" + chName(i) })
	if err != nil {
		closeHolds(holds)
		return fmt.Errorf("%d of %d subscribers: %w", len(holds), n, err)
	}
	rc := startReceivers(holds, k)
	defer rc.stop()
	pub := newPublisher(e.st.publishURL(), e.opt.PubConc)
	defer pub.close()

	batches := make([][2]int, 0, n/e.opt.Batch+1) // [from, to) channel ranges
	for i := 0; i < n; i += e.opt.Batch {
		batches = append(batches, [2]int{i, min(i+e.opt.Batch, n)})
	}
	items := func(b [2]int, content func() string) []item {
		out := make([]item, 0, b[1]-b[0])
		for c := b[0]; c < b[1]; c++ {
			out = append(out, item{chName(c), content()})
		}
		return out
	}
	probe := func() error {
		for _, b := range batches {
			if err := pub.post(items(b, func() string { return probeLine + "\n" })); err != nil {
				return err
			}
		}
		return nil
	}
	if err := waitCount(e.ctx, &rc.probed, int64(n), 60*time.Second, 300*time.Millisecond, probe); err != nil {
		return fmt.Errorf("subscribers reached by probe: %d of %d: %w", rc.probed.Load(), n, err)
	}

	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, e.opt.PubConc)
	for w := 0; w < e.opt.PubConc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; seq < k; seq++ {
				for bi := w; bi < len(batches); bi += e.opt.PubConc {
					content := func() string { return messageLine(seq, time.Now()) + "\n" }
					if err := pub.post(items(batches[bi], content)); err != nil {
						errs <- fmt.Errorf("message %d: %w", seq, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	pubElapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	_ = waitCount(e.ctx, &rc.done, int64(n), e.opt.Drain, 20*time.Millisecond, nil)
	if err := e.st.alive(); err != nil {
		return err
	}
	closed := rc.ended.Load() // before stop, which closes the rest
	rc.stop()
	t := mergeTallies(rc.tallies, n, k)
	e.set(name, "published items/s (API accepted)", "%.0f", higherBetter, float64(n*k)/pubElapsed.Seconds())
	if span := rc.lastReceive().Sub(start); t.Delivered > 0 && span > 0 {
		e.set(name, "delivered items/s (end to end)", "%.0f", higherBetter, float64(t.Delivered)/span.Seconds())
	}
	e.setLatency(name, "publish→receive", summarize(t.Lat))
	e.setDelivery(name, t)
	e.set(name, "connections closed by target", "%.0f", lowerBetter, float64(closed))
	return nil
}
