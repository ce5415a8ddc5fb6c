package zurl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/internal/testwait"
	"github.com/pushpin-go/pushpin/proto/zhttp"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

// requester plays the proxy: PUSH for first packets, ROUTER for later
// ones, SUB for replies. Packets for other sessions than the one awaited
// are kept per id, so tests can run several sessions at once.
type requester struct {
	t       testing.TB
	srv     *Server
	push    *zmq.Socket
	router  *zmq.Socket
	sub     *zmq.Socket
	zid     string
	seq     map[string]int64
	pending map[string][]*zhttp.Packet
	batches []*zhttp.Packet // list-form packets seen
}

// startZurl runs a server on ipc sockets under a short temp dir (ipc
// paths are limited to ~100 bytes) and connects a requester to it.
func startZurl(t testing.TB, mod func(*configs.ZurlConfig), smod ...func(*Server)) *requester {
	t.Helper()
	dir, err := os.MkdirTemp("", "zu")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg := configs.DefaultZurlConfig()
	cfg.InstanceID = "zurl-test"
	cfg.InSpec = "ipc://" + filepath.Join(dir, "in")
	cfg.InStreamSpec = "ipc://" + filepath.Join(dir, "in-stream")
	cfg.OutSpec = "ipc://" + filepath.Join(dir, "out")
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	// Most tests check zurl's own exchange, which acks at once; the
	// deferred ack has its own tests (withAckDelay).
	s.timers.ack = 0
	for _, f := range smod {
		f(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	r := &requester{t: t, srv: s, zid: s.ID(), seq: map[string]int64{}, pending: map[string][]*zhttp.Packet{}}
	o := zmq.Options{RecvTimeout: 100}
	o.Subscribe = []string{"proxy "}
	r.sub = connectSock(t, zmq.Sub, o, cfg.OutSpec)
	r.push = connectSock(t, zmq.Push, zmq.Options{}, cfg.InSpec)
	r.router = connectSock(t, zmq.Router, zmq.Options{RouterMandatory: true}, cfg.InStreamSpec)
	// Cleanups run last-in first-out: sockets close before the server stops.
	t.Cleanup(func() { cancel(); <-done })
	t.Cleanup(func() { r.sub.Close(); r.push.Close(); r.router.Close() })
	r.subscribe()
	return r
}

// request sends a first packet and returns the first reply.
// connectSock is a socket of typ connected to spec, as the proxy's.
func connectSock(t testing.TB, typ zmq.Type, o zmq.Options, spec string) *zmq.Socket {
	t.Helper()
	sock, err := zmq.New(typ, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := sock.Connect(spec); err != nil {
		t.Fatal(err)
	}
	return sock
}

func (r *requester) request(p *zhttp.Packet) *zhttp.Packet {
	r.t.Helper()
	p.From, p.Stream, p.HasSeq, p.Seq = "proxy", true, true, 0
	r.seq[p.ID] = 1
	if err := r.push.Send(p.AppendMessage(nil)); err != nil {
		r.t.Fatal(err)
	}
	return r.must(p.ID, 10*time.Second)
}

// subscribe waits until the SUB socket gets zurl's replies (ZeroMQ's slow
// joiner), probing with requests zurl refuses at once (no stream), so that no
// test request is ever answered into the void.
func (r *requester) subscribe() {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		id := fmt.Sprintf("probe%d", i)
		p := &zhttp.Packet{From: "proxy", ID: id, HasSeq: true, Method: "GET", URI: "http://probe.invalid/"} // no stream: bad-request at once
		if err := r.push.Send(p.AppendMessage(nil)); err != nil {
			r.t.Fatal(err)
		}
		if q := r.recvFor(id, 200*time.Millisecond); q != nil {
			// Answers to earlier probes may still come; they are kept
			// under their own ids and never read.
			return
		}
	}
	r.t.Fatal("zurl replies never reached the SUB socket")
}

// recvFor returns the next packet for session id, or nil after d.
func (r *requester) recvFor(id string, d time.Duration) *zhttp.Packet {
	r.t.Helper()
	if q := r.pending[id]; len(q) > 0 {
		r.pending[id] = q[1:]
		return q[0]
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		p := r.recvAny()
		if p == nil {
			continue
		}
		if p.From != r.zid {
			r.t.Fatalf("reply from %q, want %q", p.From, r.zid)
		}
		if len(p.IDs) > 0 {
			r.batches = append(r.batches, p)
			for _, x := range p.IDs {
				q := *p
				q.IDs, q.ID, q.Seq = nil, x.ID, x.Seq
				r.pending[x.ID] = append(r.pending[x.ID], &q)
			}
			if q := r.pending[id]; len(q) > 0 {
				r.pending[id] = q[1:]
				return q[0]
			}
			continue
		}
		if p.ID == id {
			return p
		}
		r.pending[p.ID] = append(r.pending[p.ID], p)
	}
	return nil
}

func (r *requester) recvAny() *zhttp.Packet {
	msg, err := r.sub.Recv()
	if errors.Is(err, zmq.ErrTimeout) {
		return nil
	}
	if err != nil {
		r.t.Fatal(err)
	}
	to, m, err := zhttp.SplitPub(msg[0])
	if err != nil || string(to) != "proxy" {
		r.t.Fatalf("bad PUB frame %q: %v", msg[0], err)
	}
	p, err := zhttp.ParseMessage(m)
	if err != nil {
		r.t.Fatal(err)
	}
	return p
}

// must returns the next packet for id or fails the test.
func (r *requester) must(id string, d time.Duration) *zhttp.Packet {
	r.t.Helper()
	p := r.recvFor(id, d)
	if p == nil {
		r.t.Fatalf("%s: timed out waiting for a packet", id)
	}
	return p
}

// later sends a packet through the ROUTER to zurl's identity, with the
// session's next seq.
func (r *requester) later(p *zhttp.Packet) {
	r.t.Helper()
	p.From, p.HasSeq = "proxy", true
	p.Seq = r.seq[p.ID]
	r.seq[p.ID]++
	r.raw(p)
}

// raw sends p as is through the ROUTER.
func (r *requester) raw(p *zhttp.Packet) {
	r.t.Helper()
	testwait.For(r.t, 5*time.Second, func() error {
		err := r.router.Send([]byte(r.zid), nil, p.AppendMessage(nil))
		// The ROUTER learns zurl's identity once its connection is up.
		if err != nil && !errors.Is(err, zmq.ErrUnreachable) {
			r.t.Fatal(err)
		}
		return err
	})
}

// credit grants n response bytes.
func (r *requester) credit(id string, n int) {
	r.t.Helper()
	r.later(&zhttp.Packet{ID: id, Type: zhttp.Credit, Credits: int64(n), HasCredits: true})
}

// readResponse collects a response starting at first, granting back the
// credits of every chunk as a client would, and checking seqs.
func (r *requester) readResponse(first *zhttp.Packet) (code int64, hdr zhttp.Headers, body []byte) {
	r.t.Helper()
	p, id := first, first.ID
	want := p.Seq
	next := func() {
		p = r.must(id, 10*time.Second)
		if want++; p.Seq != want {
			r.t.Fatalf("%s: seq %d, want %d", id, p.Seq, want)
		}
	}
	for p.Type == zhttp.KeepAlive || p.Type == zhttp.Credit {
		next()
	}
	if p.Type != zhttp.Data || !p.HasCode {
		r.t.Fatalf("%s: want response, got %+v", id, p)
	}
	code, hdr = p.Code, p.Headers
	for {
		body = append(body, p.Body...)
		if !p.More {
			return
		}
		if len(p.Body) > 0 {
			r.credit(id, len(p.Body))
		}
		next()
	}
}

func fds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
