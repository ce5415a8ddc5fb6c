package zurl

import "time"

// spawn runs a session on a worker goroutine that has finished one and
// waits for the next, or on a new one. A new goroutine per request paid for
// growing its stack, copied several times, to what an HTTP exchange needs
// (a tenth of zurl's CPU); a worker keeps its grown stack. The hand-off is
// the same one a `go` statement costs. At most as many workers exist as
// sessions were ever open at once (max_open_requests); idle ones exit after
// timers.worker or when the server stops.
func (s *Server) spawn(ss *session) {
	select {
	case s.idle <- ss:
	default:
		go s.work(ss)
	}
}

func (s *Server) work(ss *session) {
	t := time.NewTimer(s.timers.worker)
	defer t.Stop()
	for {
		ss.run()
		ss = nil // nothing of the last session stays reachable while idle
		t.Reset(s.timers.worker)
		select {
		case ss = <-s.idle:
		case <-t.C:
			return
		case <-s.quit:
			return
		}
	}
}
