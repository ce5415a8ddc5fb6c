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
	f, open, err := e.openFleet(name, "/stream?ch=c-{i}", n, k)
	if err != nil {
		return err
	}
	defer f.close()
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
	if _, err := e.probeAll(name, f, open.Held, probe); err != nil {
		return err
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
					if e.ctx.Err() != nil {
						errs <- e.ctx.Err()
						return
					}
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
	fin, err := e.collect(f, open.Held, nil)
	if err != nil {
		return err
	}
	e.set(name, "subscribers held", "%.0f", higherBetter, float64(open.Held))
	e.set(name, "published items/s (API accepted)", "%.0f", higherBetter, float64(n*k)/pubElapsed.Seconds())
	if span := fin.LastMsg.Sub(start); fin.Counts.Delivered > 0 && span > 0 {
		e.set(name, "delivered items/s (end to end)", "%.0f", higherBetter, float64(fin.Counts.Delivered)/span.Seconds())
	}
	e.setFinish(name, open, fin, k, false)
	return nil
}
