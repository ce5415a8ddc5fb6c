package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pushpin-go/pushpin/internal/testwait"
	"github.com/rs/zerolog"
)

// wsTarget is a WebSocket server built on gorilla/websocket: every session
// gets "ok" first, as the bench backend sends it; the test then writes to
// them. It counts the clients' pongs and close frames.
type wsTarget struct {
	srv    *httptest.Server
	mu     sync.Mutex
	conns  []*websocket.Conn
	pongs  atomic.Int64
	closes atomic.Int64 // close frames received from clients
	wg     sync.WaitGroup
}

func newWSTarget(t *testing.T) *wsTarget {
	t.Helper()
	wt := &wsTarget{}
	up := websocket.Upgrader{}
	wt.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return // the client saw the refusal
		}
		c.SetPongHandler(func(string) error { wt.pongs.Add(1); return nil })
		wt.mu.Lock()
		err = c.WriteMessage(websocket.TextMessage, []byte(wsWelcome))
		wt.conns = append(wt.conns, c)
		wt.mu.Unlock()
		if err != nil {
			t.Errorf("welcome: %v", err)
		}
		wt.wg.Add(1)
		go func() {
			defer wt.wg.Done()
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					// gorilla has answered a close frame with one already.
					var ce *websocket.CloseError
					if errors.As(err, &ce) {
						wt.closes.Add(1)
					}
					return
				}
			}
		}()
	}))
	t.Cleanup(func() {
		wt.srv.Close()
		wt.mu.Lock()
		for _, c := range wt.conns {
			c.Close()
		}
		wt.mu.Unlock()
		wt.wg.Wait()
	})
	return wt
}

func (wt *wsTarget) addr() string { return strings.TrimPrefix(wt.srv.URL, "http://") }

// send writes one text message to the sessions picked (all if nil).
func (wt *wsTarget) send(t *testing.T, msg string, pick func(i int) bool) {
	t.Helper()
	wt.mu.Lock()
	defer wt.mu.Unlock()
	for i, c := range wt.conns {
		if pick == nil || pick(i) {
			if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				t.Fatalf("session %d: %v", i, err)
			}
		}
	}
}

// 50 sessions over 2 workers: every one held, pings answered, messages
// counted; one gets a gap and stays open, one is closed with 1008; on
// finish the others are closed with a close handshake.
func TestWSFleetDeliversGapsAndCloses(t *testing.T) {
	const n, k = 50, 3
	wt := newWSTarget(t)
	spec := fleetSpec{Addr: wt.addr(), Path: "/ws/x?ch={i}", N: n, Conc: 10, K: k, WS: wsConfig{On: true}}
	f, open, err := startFleet(t.Context(), spec, testClientOpts(t, 30), zerolog.Nop())
	defer f.close()
	if err != nil || open.Held != n || open.Failed != 0 || len(f.ws) != 2 {
		t.Fatalf("open %+v, %d workers: %v", open, len(f.ws), err)
	}
	wt.send(t, probeLine, nil)
	waitStatus(t, f, func(s statusReply) bool { return s.Probed == n })
	wt.mu.Lock()
	for _, c := range wt.conns {
		if err := c.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	wt.mu.Unlock()
	now := time.Now()
	wt.send(t, messageLine(0, now), nil)
	wt.send(t, messageLine(1, now)+"\n"+strings.Repeat("x", 2000), func(i int) bool { return i != 0 && i != 1 })
	wt.mu.Lock()
	err = wt.conns[1].WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1008, "client cannot keep up"),
		time.Now().Add(time.Second))
	wt.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	wt.send(t, messageLine(2, now), func(i int) bool { return i != 1 })
	waitStatus(t, f, func(s statusReply) bool { return s.Done == n-2 && s.Ended == 1 && s.CloseFrames == 1 })
	if got := wt.pongs.Load(); got != n { // the pings were read before message 0
		t.Fatalf("%d pongs", got)
	}
	fin, err := f.finish(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c := fin.Counts
	if c.Receivers != n || c.Delivered != n*k-3 || c.Holes != 1 || c.GapRecv != 1 || c.OpenMissing != 0 ||
		c.ClosedFrame != 1 || c.ClosedOther != 0 || fin.Ended != 1 || fin.CloseCode != 1008 ||
		fin.CloseReason != "client cannot keep up" || fin.Lat.n != n*k-3 {
		t.Fatalf("counts %+v, finish %+v", c, fin)
	}
	// Session 1's reply to the target's close, and the 49 the finish closed.
	testwait.For(t, 30*time.Second, func() error {
		if got := wt.closes.Load(); got != n {
			return fmt.Errorf("the target saw %d close frames", got)
		}
		return nil
	})
}

// ws-open's sessions close once held, and the close handshakes complete.
func TestWSFleetCloseAfterOpen(t *testing.T) {
	const n = 20
	wt := newWSTarget(t)
	spec := fleetSpec{Addr: wt.addr(), Path: "/ws/open?ch=o-{i}", N: n, Conc: 5, WS: wsConfig{On: true, CloseAfterOpen: true}}
	f, open, err := startFleet(t.Context(), spec, testClientOpts(t, 1000), zerolog.Nop())
	defer f.close()
	if err != nil || open.Held != n || open.OpenLat.n != n {
		t.Fatalf("open %+v: %v", open, err)
	}
	waitStatus(t, f, func(s statusReply) bool { return s.Ended == n && s.CloseFrames == n })
	fin, err := f.finish(t.Context())
	if err != nil || fin.Counts.ClosedFrame != n || fin.CloseCode != 1000 || wt.closes.Load() != n {
		t.Fatalf("finish %+v, server saw %d closes: %v", fin, wt.closes.Load(), err)
	}
}

// A paused session reads nothing after its probe until resumed, then
// everything.
func TestWSFleetPauseResume(t *testing.T) {
	const n, k = 3, 40
	wt := newWSTarget(t)
	spec := fleetSpec{Addr: wt.addr(), Path: "/ws/slow?ch=s", N: n, Conc: n, K: k,
		WS: wsConfig{On: true, Pause: true, RcvBuf: slowRcvBuf}}
	f, open, err := startFleet(t.Context(), spec, testClientOpts(t, 1000), zerolog.Nop())
	defer f.close()
	if err != nil || open.Held != n {
		t.Fatalf("open %+v: %v", open, err)
	}
	wt.send(t, probeLine, nil)
	waitStatus(t, f, func(s statusReply) bool { return s.Probed == n })
	pad := "\n" + strings.Repeat("x", 1000)
	done := make(chan struct{})
	go func() { // blocks once the small window and the buffers are full
		defer close(done)
		for seq := 0; seq < k; seq++ {
			wt.send(t, messageLine(seq, time.Now())+pad, nil)
		}
	}()
	if s, err := f.status(t.Context()); err != nil || s.Done != 0 {
		t.Fatalf("paused sessions read: %+v, %v", s, err)
	}
	if _, err := f.resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, f, func(s statusReply) bool { return s.Done == n })
	<-done
}

// A target that refuses the upgrade (ours answers 501 until it speaks
// WebSocket) gives failed opens, not a hang.
func TestWSFleetRefused(t *testing.T) {
	rt := newRawTarget(t)
	rt.reject = func(string) bool { return true }
	rt.serve()
	spec := fleetSpec{Addr: rt.ln.Addr().String(), Path: "/ws/x?ch={i}", N: 30, Conc: 3, K: 1, WS: wsConfig{On: true}}
	f, open, err := startFleet(t.Context(), spec, testClientOpts(t, 1000), zerolog.Nop())
	f.close()
	if err != nil || open.Held != 0 || open.Failed+open.Skipped != 30 || open.FirstErr != "status 404" {
		t.Fatalf("open %+v: %v", open, err)
	}
}
