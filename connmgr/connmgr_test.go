package connmgr

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/proto/zhttp"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

// fakeServer plays the proxy: PULL for first packets, ROUTER (identity
// id) for later ones, PUB for replies.
type fakeServer struct {
	t    *testing.T
	id   string
	pull *zmq.Socket
	rtr  *zmq.Socket
	pub  *zmq.Socket
	seq  map[string]int64
}

func start(t *testing.T) (addr string, base string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "cm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr = l.Addr().String()
	l.Close()
	base = "ipc://" + filepath.Join(dir, "condure")
	s, err := New(Config{Listen: []string{addr}, ZClient: base}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return addr, base
}

func newFake(t *testing.T, base, id string) *fakeServer {
	t.Helper()
	out, stream, in, _ := Specs(base)
	f := &fakeServer{t: t, id: id, seq: map[string]int64{}}
	mk := func(typ zmq.Type, o zmq.Options, spec string) *zmq.Socket {
		s, err := zmq.New(typ, o)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Connect(spec); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s
	}
	f.pull = mk(zmq.Pull, zmq.Options{}, out)
	f.rtr = mk(zmq.Router, zmq.Options{Identity: id}, stream)
	f.pub = mk(zmq.Pub, zmq.Options{}, in)
	return f
}

func (f *fakeServer) recvFrom(s *zmq.Socket, d time.Duration) *zhttp.Packet {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		msg, err := s.Recv()
		if errors.Is(err, zmq.ErrTimeout) {
			continue
		}
		if err != nil {
			f.t.Fatal(err)
		}
		p, err := zhttp.ParseMessage(msg[len(msg)-1])
		if err != nil {
			f.t.Fatal(err)
		}
		return p
	}
	f.t.Fatal("timed out waiting for a packet")
	return nil
}

// reply publishes a packet to the client; PUB drops until the SUB's
// subscription arrived, so the first reply of a test is retried by the
// caller through replyFirst.
func (f *fakeServer) reply(id string, p *zhttp.Packet) {
	p.From, p.ID, p.HasSeq, p.Seq = f.id, id, true, f.seq[id]
	f.seq[id]++
	if err := f.pub.Send(p.AppendPub(nil, "condure")); err != nil {
		f.t.Fatal(err)
	}
}

func TestRequestResponse(t *testing.T) {
	t.Parallel()
	addr, base := start(t)
	f := newFake(t, base, "fake")
	time.Sleep(200 * time.Millisecond) // PUB→SUB subscription (slow joiner)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i := 0; i < 2; i++ { // two requests on one keep-alive connection
		fmt.Fprintf(c, "GET /path?q=%d HTTP/1.1\r\nHost: example.com\r\nX-A: b\r\n\r\n", i)
		p := f.recvFrom(f.pull, 5*time.Second)
		if p.From != "condure" || p.Seq != 0 || !p.Stream || !p.Ext.Multi || p.Credits != 8192 ||
			p.Method != "GET" || p.URI != fmt.Sprintf("http://example.com/path?q=%d", i) || p.Headers.Get("X-A") != "b" || p.PeerAddress != "127.0.0.1" {
			t.Fatalf("first packet %+v", p)
		}
		f.reply(p.ID, &zhttp.Packet{HasCode: true, Code: 200, Reason: "OK", Headers: zhttp.Headers{{Name: "Content-Type", Value: "text/plain"}}, Body: []byte("hi\n")})
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != "hi\n" || resp.ContentLength != 3 {
			t.Fatalf("response %d %q len %d", resp.StatusCode, b, resp.ContentLength)
		}
	}
}

// A streamed response is chunked and every body byte written is credited
// back; a handoff moves the session to another server identity.
func TestStreamCreditsAndHandoff(t *testing.T) {
	t.Parallel()
	addr, base := start(t)
	f := newFake(t, base, "proxy1")
	g := newFake(t, base, "handler1")
	time.Sleep(200 * time.Millisecond)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
	p := f.recvFrom(f.pull, 5*time.Second)
	id := p.ID
	f.reply(id, &zhttp.Packet{Type: zhttp.KeepAlive})
	f.reply(id, &zhttp.Packet{Type: zhttp.HandoffStart})
	hp := f.recvFrom(f.rtr, 5*time.Second)
	if hp.Type != zhttp.HandoffProceed || hp.Seq != 1 {
		t.Fatalf("want handoff-proceed seq 1, got %+v", hp)
	}
	// The new owner continues the seq the first server would have used.
	g.seq[id] = f.seq[id]
	g.reply(id, &zhttp.Packet{Type: zhttp.KeepAlive})
	g.reply(id, &zhttp.Packet{HasCode: true, Code: 200, Reason: "OK", Body: []byte("start\n"), More: true})
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("not chunked: %v", resp.TransferEncoding)
	}
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	_ = line
	cr := g.recvFrom(g.rtr, 5*time.Second)
	if cr.Type != zhttp.Credit || cr.Credits != 6 || cr.Seq != 2 {
		t.Fatalf("want credit 6 seq 2 to the new owner, got %+v", cr)
	}
	// Client disconnect ⇒ cancel to the current owner.
	c.Close()
	for {
		q := g.recvFrom(g.rtr, 5*time.Second)
		if q.Type == zhttp.Cancel {
			break
		}
	}
}

// A POST body goes out only within the credits the server grants.
func TestRequestBodyCredits(t *testing.T) {
	t.Parallel()
	addr, base := start(t)
	f := newFake(t, base, "fake")
	time.Sleep(200 * time.Millisecond)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := strings.Repeat("z", 3000)
	fmt.Fprintf(c, "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	p := f.recvFrom(f.pull, 5*time.Second)
	if !p.More || len(p.Body) != 0 {
		t.Fatalf("first packet carries body without credits: %+v", p)
	}
	f.reply(p.ID, &zhttp.Packet{Type: zhttp.Credit, Credits: 1000, HasCredits: true})
	got := 0
	for got < 1000 {
		q := f.recvFrom(f.rtr, 5*time.Second)
		got += len(q.Body)
	}
	if got != 1000 {
		t.Fatalf("sent %d bytes for 1000 credits", got)
	}
	f.reply(p.ID, &zhttp.Packet{Type: zhttp.Credit, Credits: 5000, HasCredits: true})
	for got < 3000 {
		q := f.recvFrom(f.rtr, 5*time.Second)
		got += len(q.Body)
		if got == 3000 && q.More {
			t.Fatal("last body packet has more")
		}
	}
}

// A malformed request is answered with 400 and others are still served.
func TestMalformedAndLeaks(t *testing.T) {
	addr, base := start(t)
	f := newFake(t, base, "fake")
	time.Sleep(200 * time.Millisecond)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GARBAGE\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(c)
	c.Close()
	if !strings.HasPrefix(string(b), "HTTP/1.1 400") {
		t.Fatalf("malformed request answered %q", b)
	}
	// 1,000 connections opened and closed: goroutines and fds come back.
	baseG, baseFD := runtime.NumGoroutine(), countFDs(t)
	conns := make([]net.Conn, 0, 1000)
	for i := 0; i < 1000; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		g, fds := runtime.NumGoroutine(), countFDs(t)
		if g <= baseG+2 && fds <= baseFD+2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines %d (base %d), fds %d (base %d)", g, baseG, fds, baseFD)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Still serving.
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	fmt.Fprintf(c2, "GET / HTTP/1.0\r\n\r\n")
	p := f.recvFrom(f.pull, 5*time.Second)
	if p.URI != "http://localhost/" {
		t.Fatalf("no Host ⇒ localhost, got %q", p.URI)
	}
}

func countFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestSpecs(t *testing.T) {
	t.Parallel()
	o, s, i, err := Specs("tcp://127.0.0.1:10000")
	if err != nil || o != "tcp://127.0.0.1:10000" || s != "tcp://127.0.0.1:10001" || i != "tcp://127.0.0.1:10002" {
		t.Fatalf("%s %s %s %v", o, s, i, err)
	}
	o, s, i, _ = Specs("ipc:///run/pushpin-condure")
	if o != "ipc:///run/pushpin-condure-out" || s != "ipc:///run/pushpin-condure-out-stream" || i != "ipc:///run/pushpin-condure-in" {
		t.Fatalf("%s %s %s", o, s, i)
	}
}
