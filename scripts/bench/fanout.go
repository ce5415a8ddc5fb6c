package main

import (
	"fmt"
)

// fanoutRun is one fan-out measurement: a mode at a number of subscribers.
type fanoutRun struct {
	Mode string // stream, sse or ws
	Subs int
}

// scenFanout holds Subs subscribers on one channel (stream or SSE mode),
// publishes Msgs numbered messages one every interval and reports
// publish-to-receive latency, how long each message took to reach every
// subscriber, and how many of held×Msgs arrived.
func scenFanout(e *env, r fanoutRun) error {
	n, k := r.Subs, e.opt.Msgs
	interval := e.opt.intervalFor(n)
	name := fmt.Sprintf("fanout %s %d×%d @%v", r.Mode, n, k, interval)
	ch := "fan-" + r.Mode
	path := "/stream?ch=" + ch
	var wsc wsConfig
	switch r.Mode {
	case "sse":
		path = "/sse?ch=" + ch
	case "ws":
		// WebSocket sessions on the over_http route: the backend
		// subscribes each to ch (wsbackend.go), messages are ws-message.
		path, wsc = wsPathPrefix+wsKindFanout+"?ch="+ch, wsConfig{On: true}
	}
	f, open, err := e.openFleetWS(name, path, n, k, wsc)
	if err != nil {
		return err
	}
	defer f.close()
	reached, fin, err := e.oneChannel(name, f, open.Held, ch, r.Mode, k, interval, nil)
	if err != nil {
		return err
	}
	e.set(name, "subscribers held", "%.0f", higherBetter, float64(open.Held))
	if reached < open.Held {
		e.set(name, "subscribers reached by probe", "%.0f", higherBetter, float64(reached))
	}
	e.setFinish(name, open, fin, k, true)
	if wsc.On {
		e.setWSEnds(name, "", fin, k)
		e.wsSettle(name, wsKindFanout)
	}
	return nil
}
