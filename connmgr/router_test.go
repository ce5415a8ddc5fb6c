package connmgr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/internal/testwait"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

// routerRig is a connmgr-side ROUTER (ROUTER_MANDATORY, bound) in a router,
// and servers that connect to it with their identity.
type routerRig struct {
	t    *testing.T
	spec string
	r    *router
}

func newRouterRig(t *testing.T, run bool) *routerRig {
	t.Helper()
	spec := "ipc://" + t.TempDir() + "/r"
	sock, err := zmq.New(zmq.Router, zmq.Options{RouterMandatory: true, SndHWM: 1000})
	must(t, err)
	must(t, sock.Bind(spec))
	rg := &routerRig{t: t, spec: spec, r: newRouter(sock, zerolog.Nop())}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if run {
		go func() { rg.r.run(ctx); close(done) }()
	} else {
		close(done)
	}
	t.Cleanup(func() {
		cancel()
		<-done
		if !run {
			rg.r.sock.Close()
		}
	})
	return rg
}

// server connects a ROUTER with identity id and waits until the rig's
// socket knows it (a probe gets through).
func (rg *routerRig) server(id string) *zmq.Socket {
	rg.t.Helper()
	s, err := zmq.New(zmq.Router, zmq.Options{Identity: id})
	must(rg.t, err)
	rg.t.Cleanup(s.Close)
	must(rg.t, s.Connect(rg.spec))
	return s
}

func (rg *routerRig) expect(s *zmq.Socket, want ...string) {
	rg.t.Helper()
	for _, w := range want {
		msg, err := recvWithin(s, 3*time.Second)
		must(rg.t, err)
		if len(msg) != 3 || string(msg[2]) != w {
			rg.t.Fatalf("got %q, want %q", msg, w)
		}
	}
}

// A reachable identity with nothing queued is sent to on the caller's
// goroutine: no run loop is needed.
func TestRouterSendsDirectly(t *testing.T) {
	t.Parallel()
	rg := newRouterRig(t, false)
	s := rg.server("srv")
	deadline := time.Now().Add(3 * time.Second)
	for {
		rg.r.send("srv", []byte("probe"))
		if rg.r.queued == 0 {
			break
		}
		// Not attached yet: the probe is queued; without run it stays.
		rg.r.peers, rg.r.waiting, rg.r.queued = map[string]*peer{}, nil, 0
		if time.Now().After(deadline) {
			t.Fatal("server never became reachable")
		}
		time.Sleep(10 * time.Millisecond)
	}
	rg.expect(s, "probe")
	rg.r.send("srv", []byte("a"))
	rg.r.send("srv", []byte("b"))
	rg.expect(s, "a", "b")
	check(t, "queued", rg.r.queued, 0)
}

// After a handoff the new owner may still be connecting: its packets wait
// (retried), in order, until it is; packets to a server that is connected
// go meanwhile, not behind them.
func TestRouterWaitsForConnectingServer(t *testing.T) {
	t.Parallel()
	rg := newRouterRig(t, true)
	old := rg.server("old")
	waitReachable(t, rg, old, "old")
	rg.r.send("new", []byte("n1"))
	rg.r.send("new", []byte("n2"))
	rg.r.send("old", []byte("o1"))
	rg.expect(old, "o1")
	nw := rg.server("new")
	rg.expect(nw, "n1", "n2")
	rg.r.send("new", []byte("n3"))
	rg.expect(nw, "n3")
}

// dropRecorder collects what the router drops (its onDrop).
type dropRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (d *dropRecorder) onDrop(to string, msg []byte) {
	d.mu.Lock()
	d.msgs = append(d.msgs, to+":"+string(msg))
	d.mu.Unlock()
}

// newDropRig is a router rig whose dropped packets d records.
func newDropRig(t *testing.T) (*routerRig, *dropRecorder) {
	rg := newRouterRig(t, true)
	d := &dropRecorder{}
	rg.r.mu.Lock()
	rg.r.onDrop = d.onDrop
	rg.r.mu.Unlock()
	return rg, d
}

func (d *dropRecorder) waitDropped(t *testing.T, want ...string) {
	t.Helper()
	testwait.For(t, 5*time.Second, func() error {
		d.mu.Lock()
		got := strings.Join(d.msgs, ",")
		d.mu.Unlock()
		if got != strings.Join(want, ",") {
			return fmt.Errorf("dropped %q, want %q", got, want)
		}
		return nil
	})
}

// A server that never connects costs its packets after the retry time
// (they are dropped, and handed to onDrop); a server that is connected
// meanwhile is not held up by them.
func TestRouterDropsNeverConnectedAfterRetry(t *testing.T) {
	t.Parallel()
	rg, d := newDropRig(t)
	srv := rg.server("srv")
	waitReachable(t, rg, srv, "srv")
	start := time.Now()
	rg.r.send("never", []byte("lost1"))
	rg.r.send("never", []byte("lost2"))
	rg.r.send("srv", []byte("after"))
	rg.expect(srv, "after")
	d.waitDropped(t, "never:lost1", "never:lost2")
	if el := time.Since(start); el < unreachableFor-50*time.Millisecond {
		t.Fatalf("packets to a connecting server dropped after %v (retry time %v)", el, unreachableFor)
	}
	// Waited for in vain once: the next packet to it is dropped at once.
	rg.r.send("never", []byte("lost3"))
	d.waitDropped(t, "never:lost1", "never:lost2", "never:lost3")
	check(t, "queued", queued(rg.r), 0)
}

// A server that was reached and then left (a restarted handler or proxy)
// loses its packets at once, each handed to onDrop, and nothing waits
// behind them; a server that comes back with the same identity gets
// packets again.
func TestRouterDropsGoneServerAtOnce(t *testing.T) {
	t.Parallel()
	rg, d := newDropRig(t)
	live := rg.server("live")
	waitReachable(t, rg, live, "live")
	gone := rg.server("gone")
	waitReachable(t, rg, gone, "gone")
	gone.Close()
	// The ROUTER notices the pipe closing shortly: until then packets to
	// it still go (into the closed pipe, lost, as with any peer that dies).
	testwait.For(t, 5*time.Second, func() error {
		rg.r.send("gone", []byte("x"))
		// A server reached before is never waited for: its packets go
		// (into the closing pipe, lost) or are dropped, never queued.
		if n := queued(rg.r); n != 0 {
			t.Fatalf("%d packets queued for a server that was reached and left", n)
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		if len(d.msgs) == 0 {
			return errors.New("packets to the closed server still go")
		}
		return nil
	})
	for range 100 {
		rg.r.send("gone", []byte("g"))
	}
	rg.r.send("live", []byte("l"))
	rg.expect(live, "l")
	check(t, "queued", queued(rg.r), 0)
	testwait.For(t, 5*time.Second, func() error {
		d.mu.Lock()
		defer d.mu.Unlock()
		if n := strings.Count(strings.Join(d.msgs, ","), "gone:g"); n != 100 {
			return fmt.Errorf("%d of 100 packets to the gone server dropped", n)
		}
		return nil
	})
	back := rg.server("gone")
	waitReachable(t, rg, back, "gone")
	rg.r.send("gone", []byte("again"))
	rg.expect(back, "again")
}

func queued(r *router) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.queued
}

// waitReachable probes id until a probe arrives (one sent before the
// connection is attached is dropped after the retry time).
func waitReachable(t *testing.T, rg *routerRig, s *zmq.Socket, id string) {
	t.Helper()
	for range 10 {
		rg.r.send(id, []byte("probe"))
		if msg, err := recvWithin(s, 2*unreachableFor); err == nil {
			check(t, "probe", string(msg[2]), "probe")
			return
		}
	}
	t.Fatalf("%s never became reachable", id)
}

// Drops are warned about once per server per dropLogEvery, with the count
// since the last warning; a count within the interval waits for it.
func TestRouterDropWarningRateLimited(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	r := newRouter(nil, zerolog.New(&buf))
	lines := func() []string { return strings.Split(strings.TrimSpace(buf.String()), "\n") }
	t0 := time.Now()
	for range 3 {
		r.drop(r.peer("a"), []byte("x"), true)
	}
	r.drop(r.peer("b"), []byte("x"), true)
	if pending := r.logDrops(t0); pending {
		t.Fatal("nothing should wait after the first warnings")
	}
	check(t, "warnings", len(lines()), 2)
	for range 2 {
		r.drop(r.peer("a"), []byte("x"), true)
	}
	if pending := r.logDrops(t0.Add(time.Second)); !pending {
		t.Fatal("a count within the interval should wait")
	}
	check(t, "warnings within the interval", len(lines()), 2)
	r.logDrops(t0.Add(dropLogEvery))
	l := lines()
	check(t, "warnings after the interval", len(l), 3)
	if !strings.Contains(l[2], `"level":"warn"`) || !strings.Contains(l[2], `"to":"a"`) || !strings.Contains(l[2], `"packets":2`) {
		t.Fatalf("warning %s", l[2])
	}
}
