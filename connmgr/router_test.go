package connmgr

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

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
		if len(rg.r.q) == 0 {
			break
		}
		// Not attached yet: the probe is queued; without run it stays.
		rg.r.q = nil
		if time.Now().After(deadline) {
			t.Fatal("server never became reachable")
		}
		time.Sleep(10 * time.Millisecond)
	}
	rg.expect(s, "probe")
	rg.r.send("srv", []byte("a"))
	rg.r.send("srv", []byte("b"))
	rg.expect(s, "a", "b")
	check(t, "queued", len(rg.r.q), 0)
}

// After a handoff the new owner may still be connecting: its packets wait
// (retried) until it is, and later packets, to anyone, stay behind them.
func TestRouterWaitsForConnectingServer(t *testing.T) {
	t.Parallel()
	rg := newRouterRig(t, true)
	old := rg.server("old")
	waitReachable(t, rg, old, "old")
	rg.r.send("new", []byte("n1"))
	rg.r.send("new", []byte("n2"))
	rg.r.send("old", []byte("o1"))
	if msg, err := recvWithin(old, 100*time.Millisecond); err == nil {
		t.Fatalf("%q overtook packets waiting for the new server", msg)
	}
	nw := rg.server("new")
	rg.expect(nw, "n1", "n2")
	rg.expect(old, "o1")
	rg.r.send("new", []byte("n3"))
	rg.expect(nw, "n3")
}

// A server that never connects costs its packets after the retry time;
// what follows goes out after them.
func TestRouterDropsUnreachableAfterRetry(t *testing.T) {
	t.Parallel()
	rg := newRouterRig(t, true)
	srv := rg.server("srv")
	waitReachable(t, rg, srv, "srv")
	start := time.Now()
	rg.r.send("gone", []byte("lost"))
	rg.r.send("srv", []byte("after"))
	rg.expect(srv, "after")
	if d := time.Since(start); d < unreachableFor-50*time.Millisecond {
		t.Fatalf("packet behind an unreachable one went after %v (retry time %v)", d, unreachableFor)
	}
	rg.r.send("srv", []byte("direct"))
	rg.expect(srv, "direct")
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
