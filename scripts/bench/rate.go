package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// rateRun is one sustained-rate or burst measurement: Subs subscribers on
// one channel, messages published at Rate a second (0: back to back).
type rateRun struct {
	Subs, Rate int
}

// scenRate holds r.Subs stream subscribers on one channel and publishes k
// numbered messages of e.opt.Size bytes, RateBatch items per request, at
// r.Rate messages a second (the requests on a fixed schedule, not one
// interval after the previous answer), or back to back when r.Rate is 0:
// what a subscriber that reads at the rate it is sent gets, where the
// fan-out scenarios publish a message a second at most.
//
// With ws (ws-rate), the subscribers are WebSocket sessions, the messages
// ws-message publishes, and -ws-slow more sessions on the channel stop
// reading after the probe (wsrate.go): what the target does with a client
// that cannot keep up.
func scenRate(e *env, r rateRun, k int, ws bool) error {
	name := fmt.Sprintf("rate %d subs × %d msg/s × %d B", r.Subs, r.Rate, e.opt.Size)
	if r.Rate == 0 {
		name = fmt.Sprintf("burst %d subs × %d msgs × %d B", r.Subs, k, e.opt.Size)
	}
	ch := fmt.Sprintf("rate-%d-%d", r.Subs, r.Rate)
	path, probe, wsc := "/stream?ch="+ch, probeLine+"\n", wsConfig{}
	if ws {
		name = "ws-" + name
		ch = "ws" + ch
		path, probe, wsc = wsPathPrefix+wsKindRate+"?ch="+ch, probeLine, wsConfig{On: true}
	}
	f, open, err := e.openFleetWS(name, path, r.Subs, k, wsc)
	if err != nil {
		return err
	}
	defer f.close()
	pub := newPublisher(e.st.publishURL(), 1)
	pub.ws = ws
	defer pub.close()
	var slow *slowFleet
	if ws && e.opt.WSSlow > 0 {
		if slow, err = e.openSlow(name, path, k, func() error { return pub.post([]item{{ch, probe}}) }); err != nil {
			return err
		}
		defer slow.f.close()
	}
	if _, err := e.probeAll(name, f, open.Held, func() error { return pub.post([]item{{ch, probe}}) }); err != nil {
		return err
	}
	pad := padLine(e.opt.Size)
	batch := e.opt.RateBatch
	var interval time.Duration
	if r.Rate > 0 {
		interval = time.Duration(batch) * time.Second / time.Duration(r.Rate)
	}
	start := time.Now()
	items := make([]item, 0, batch)
	err = e.publishSeries((k+batch-1)/batch, interval, func(b int, now time.Time) error {
		items = items[:0]
		for seq := b * batch; seq < min((b+1)*batch, k); seq++ {
			items = append(items, item{ch, messageLine(seq, now) + "\n" + pad})
		}
		return pub.post(items)
	})
	if err != nil {
		return err
	}
	pubElapsed := time.Since(start)
	fin, err := e.collect(f, open.Held, nil)
	if err != nil {
		return err
	}
	e.set(name, "subscribers held", "%.0f", higherBetter, float64(open.Held))
	e.set(name, "published msg/s (API accepted)", "%.0f", higherBetter, float64(k)/pubElapsed.Seconds())
	if span := fin.LastMsg.Sub(start); fin.Counts.Delivered > 0 && span > 0 {
		e.set(name, "delivered msg/s (end to end, all subscribers)", "%.0f", higherBetter, float64(fin.Counts.Delivered)/span.Seconds())
	}
	e.setFinish(name, open, fin, k, false)
	if ws {
		e.setWSEnds(name, "", fin, k)
	}
	if slow != nil {
		return e.finishSlow(name, slow, k)
	}
	if ws {
		e.wsSettle(name, wsKindRate)
	}
	return nil
}

// padLine fills a numbered message ("m <seq> <ns>\n", about 30 bytes) up
// to size bytes with one line the clients skip (longer than any of ours).
func padLine(size int) string {
	n := size - 32
	if n <= lineMax {
		return ""
	}
	return strings.Repeat("x", n-1) + "\n"
}

// parseRate reads -rate ("subs×rate,…" written subsxrate) and -burst
// ("subsxmsgs,…"); burst runs have rate 0 and return their own message counts.
func parseRate(spec string, burst bool) (runs []rateRun, msgs []int, err error) {
	for _, f := range strings.Split(spec, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		a, b, ok := strings.Cut(f, "x")
		n, err1 := strconv.Atoi(a)
		v, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || n < 1 || v < 1 {
			return nil, nil, fmt.Errorf("%q is not subscribers x %s", f, map[bool]string{false: "msg/s", true: "messages"}[burst])
		}
		if burst {
			runs, msgs = append(runs, rateRun{Subs: n}), append(msgs, v)
		} else {
			runs = append(runs, rateRun{Subs: n, Rate: v})
		}
	}
	return runs, msgs, nil
}
