package zurl

import (
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// wsPeer plays Pushpin's zws client on an open session: it counts the
// credits zurl grants, sends messages within them (split into more:true
// packets, as Pushpin does), and grants back what it reads.
type wsPeer struct {
	t       *testing.T
	r       *requester
	id      string
	last    int64 // seq of the last packet received
	credits int64 // message bytes we may send
	inbox   []*zhttp.Packet
}

// wsConnect opens a session and expects the 101.
func (r *requester) wsConnect(t *testing.T, p *zhttp.Packet) (*wsPeer, *zhttp.Packet) {
	t.Helper()
	first := r.wsOpen(p)
	if first.Type != zhttp.Data || first.Code != 101 || first.Seq != 0 {
		t.Fatalf("%s: want 101, got %s", p.ID, fmtP(first))
	}
	return &wsPeer{t: t, r: r, id: p.ID, credits: first.Credits}, first
}

// pull returns the next packet that is not a keep-alive, counting credits.
func (w *wsPeer) pull() *zhttp.Packet {
	w.t.Helper()
	p := w.r.next(w.id, &w.last)
	w.credits += p.Credits
	return p
}

// recv returns the next packet other than credit and keep-alive.
func (w *wsPeer) recv() *zhttp.Packet {
	w.t.Helper()
	if len(w.inbox) > 0 {
		p := w.inbox[0]
		w.inbox = w.inbox[1:]
		return p
	}
	for {
		if p := w.pull(); p.Type != zhttp.Credit {
			return p
		}
	}
}

// message reads one message (data packets up to the one without more),
// granting back each packet's bytes as Pushpin's client does.
func (w *wsPeer) message() (ct string, body []byte, packets int) {
	w.t.Helper()
	for {
		p := w.recv()
		if p.Type != zhttp.Data {
			w.t.Fatalf("%s: want data, got %s", w.id, fmtP(p))
		}
		if packets == 0 {
			ct = p.ContentType
		}
		packets++
		body = append(body, p.Body...)
		if len(p.Body) > 0 {
			w.r.credit(w.id, len(p.Body))
		}
		if !p.More {
			return ct, body, packets
		}
	}
}

// send writes a message within the credits, waiting for more as needed.
func (w *wsPeer) send(ct string, body []byte) {
	w.t.Helper()
	for first := true; first || len(body) > 0; first = false {
		for w.credits <= 0 && len(body) > 0 {
			if p := w.pull(); p.Type != zhttp.Credit {
				w.inbox = append(w.inbox, p)
			}
		}
		n := min(int64(len(body)), w.credits)
		w.r.later(&zhttp.Packet{ID: w.id, ContentType: ct, Body: body[:n], More: n < int64(len(body))})
		w.credits -= n
		body = body[n:]
	}
}

// waitCredits reads packets until the credits reach n (all written).
func (w *wsPeer) waitCredits(n int64) {
	w.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for w.credits < n {
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: credits %d, want %d", w.id, w.credits, n)
		}
		if p := w.pull(); p.Type != zhttp.Credit {
			w.inbox = append(w.inbox, p)
		}
	}
}

// control sends a ping, pong or close packet.
func (w *wsPeer) control(typ zhttp.Type, code int64, body string) {
	w.t.Helper()
	p := &zhttp.Packet{ID: w.id, Type: typ, Body: []byte(body)}
	if code != 0 {
		p.Code, p.HasCode = code, true
	}
	w.r.later(p)
}

// quiet checks that nothing but credits and keep-alives comes for d.
func (w *wsPeer) quiet(d time.Duration) {
	w.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		p := w.r.recvFor(w.id, 50*time.Millisecond)
		if p != nil && p.Type != zhttp.Credit && p.Type != zhttp.KeepAlive {
			w.t.Fatalf("%s: unexpected %s", w.id, fmtP(p))
		}
	}
}
