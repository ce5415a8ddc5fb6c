package proxy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/internal/testwait"
	"github.com/pushpin-go/pushpin/proto/handoff"
	"github.com/pushpin-go/pushpin/proto/zhttp"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

const testID = "proxy-test"

// rig is a proxy running in-process between a fake connection manager, a
// fake zurl and a fake handler, all real ZeroMQ sockets on ipc paths.
type rig struct {
	t                    *testing.T
	px                   *Proxy
	cPush, cRouter       *zmq.Socket   // connection manager
	cIn                  chan [][]byte // what the proxy publishes to the connection manager
	zPull, zRouter, zPub *zmq.Socket   // zurl
	hPull                *zmq.Socket   // handler (Accept)
	cSeq                 map[string]int64
	dir                  string // rundir: the proxy's ipc endpoints
}

// newRig starts the proxy; it acks at once (Pushpin's exchange) unless
// opts say otherwise.
func newRig(t *testing.T, routes []string, extra string, opts ...Option) *rig {
	t.Helper()
	dir, err := os.MkdirTemp("", "px") // ipc paths must stay short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	conf := "[global]\ninclude=internal.conf\nrundir=" + dir + "\n[proxy]\nsig_iss=pushpin\nsig_key=changeme\n" + extra
	cfg, err := configs.LoadBytes("pushpin.conf", dir, []byte(conf), configs.Options{Routes: routes})
	if err != nil {
		t.Fatal(err)
	}
	ipc := func(n string) string { return "ipc://" + filepath.Join(dir, "pushpin-"+n) }
	r := &rig{t: t, cSeq: map[string]int64{}, dir: dir}
	mk := func(typ zmq.Type, o zmq.Options, bind bool, ep string) *zmq.Socket {
		o.RecvTimeout = 2
		s, err := zmq.New(typ, o)
		if err != nil {
			t.Fatal(err)
		}
		if bind {
			err = s.Bind(ep)
		} else {
			err = s.Connect(ep)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s
	}
	r.cPush = mk(zmq.Push, zmq.Options{}, true, ipc("condure-out"))
	r.cRouter = mk(zmq.Router, zmq.Options{Identity: "condure", RouterMandatory: true}, true, ipc("condure-out-stream"))
	r.recvClient(mk, ipc("condure-in"))
	r.zPull = mk(zmq.Pull, zmq.Options{}, true, ipc("zurl-in"))
	r.zRouter = mk(zmq.Router, zmq.Options{Identity: "zurl1"}, true, ipc("zurl-in-stream"))
	// XPUB: it sees the proxy's subscription arrive (below), so no reply
	// is sent before the proxy can get it (ZeroMQ's slow joiner).
	r.zPub = mk(zmq.XPub, zmq.Options{}, true, ipc("zurl-out"))
	opts = append([]Option{WithID(testID), WithSettle(300 * time.Millisecond), WithAckDelay(0)}, opts...)
	r.px, err = New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(testLogLevel), opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.px.Run(ctx); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	r.hPull = mk(zmq.Pull, zmq.Options{}, false, ipc("accept"))
	for sub := ""; sub != "\x01"+testID+" "; {
		sub = string(recvOne(t, r.zPub, 10*time.Second)[0])
	}
	return r
}

func recvOne(t *testing.T, s *zmq.Socket, d time.Duration) [][]byte {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		msg, err := s.Recv()
		if errors.Is(err, zmq.ErrTimeout) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	t.Fatalf("nothing received within %v", d)
	return nil
}

// recvClient runs the fake connection manager's SUB in its own receive
// loop, as a real one does: a SUB attaches a new publisher and sends it its
// subscription only while it is being read, so a SUB read only when a test
// expects a packet would miss whatever the proxy published before.
func (r *rig) recvClient(mk func(zmq.Type, zmq.Options, bool, string) *zmq.Socket, ep string) {
	s := mk(zmq.Sub, zmq.Options{Subscribe: []string{"condure "}}, true, ep)
	r.cIn = make(chan [][]byte, 4096)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		zmq.RecvLoop(ctx, s, func(msg [][]byte) {
			r.cIn <- append([][]byte(nil), msg...)
		}, func(err error) { r.t.Error(err) })
	}()
	// Runs before mk's Close of s (cleanups run last-registered first).
	r.t.Cleanup(func() { cancel(); <-done })
}

// clientTry returns the next message the proxy published to the connection
// manager, waiting up to d.
func (r *rig) clientTry(d time.Duration) ([][]byte, bool) {
	select {
	case msg := <-r.cIn:
		return msg, true
	case <-time.After(d):
		return nil, false
	}
}

// request sends a connection-manager first packet (seq 0).
func (r *rig) request(id, method, uri string, h zhttp.Headers, body []byte, more bool, credits int64) {
	r.t.Helper()
	p := zhttp.Packet{From: "condure", ID: id, Seq: 0, HasSeq: true, Ext: zhttp.Ext{Multi: true},
		Method: method, URI: uri, Headers: h, HasHeaders: true, Body: body, More: more, Stream: true,
		Credits: credits, HasCredits: true, PeerAddress: "10.1.2.3", PeerPort: 5555}
	r.cSeq[id] = 1
	if err := r.cPush.Send(p.AppendMessage(nil)); err != nil {
		r.t.Fatal(err)
	}
}

// clientSend sends a later connection-manager packet to the proxy.
func (r *rig) clientSend(id string, p zhttp.Packet) {
	r.t.Helper()
	p.From, p.ID, p.HasSeq, p.Seq = "condure", id, true, r.cSeq[id]
	r.cSeq[id]++
	p.Ext.Multi = true
	// The ROUTER peer may still be connecting.
	testwait.For(r.t, time.Second, func() error { return r.cRouter.Send([]byte(testID), nil, p.AppendMessage(nil)) })
}

// clientRecv returns the next packet the proxy sent to the connection manager.
func (r *rig) clientRecv() *zhttp.Packet {
	r.t.Helper()
	msg, ok := r.clientTry(5 * time.Second)
	if !ok {
		r.t.Fatal("nothing received from the proxy within 5s")
	}
	to, m, err := zhttp.SplitPub(msg[0])
	if err != nil || string(to) != "condure" {
		r.t.Fatalf("bad PUB frame %q: %v", msg[0], err)
	}
	p, err := zhttp.ParseMessage(m)
	if err != nil {
		r.t.Fatal(err)
	}
	if p.From != testID {
		r.t.Fatalf("from %q", p.From)
	}
	return p
}

// zurlFirst returns the next first packet of an outbound request.
func (r *rig) zurlFirst() *zhttp.Packet {
	r.t.Helper()
	p, err := zhttp.ParseMessage(recvOne(r.t, r.zPull, 5*time.Second)[0])
	if err != nil {
		r.t.Fatal(err)
	}
	return p
}

// zurlRecv returns the next later packet sent to zurl's ROUTER.
func (r *rig) zurlRecv(d time.Duration) *zhttp.Packet {
	r.t.Helper()
	msg := recvOne(r.t, r.zRouter, d)
	p, err := zhttp.ParseMessage(msg[len(msg)-1])
	if err != nil {
		r.t.Fatal(err)
	}
	return p
}

// zurlSend publishes a zurl reply for request id with seq.
func (r *rig) zurlSend(id string, seq int64, p zhttp.Packet) {
	r.t.Helper()
	p.From, p.ID, p.Seq, p.HasSeq = "zurl1", id, seq, true
	if err := r.zPub.Send(p.AppendPub(nil, testID)); err != nil {
		r.t.Fatal(err)
	}
}

// accept returns the next Accept message the handler gets.
func (r *rig) accept() *handoff.Accept {
	r.t.Helper()
	a, err := handoff.ParseAccept(recvOne(r.t, r.hPull, 5*time.Second)[0])
	if err != nil {
		r.t.Fatal(err)
	}
	return a
}

// testLogLevel is the rig proxy's log level (PROXY_TEST_LOG=debug for more).
var testLogLevel = func() zerolog.Level {
	if l, err := zerolog.ParseLevel(os.Getenv("PROXY_TEST_LOG")); err == nil && l != zerolog.NoLevel {
		return l
	}
	return zerolog.InfoLevel
}()
