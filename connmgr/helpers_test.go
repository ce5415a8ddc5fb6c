package connmgr

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/internal/testwait"
	"github.com/pushpin-go/pushpin/proto/zhttp"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

// startServer runs a connection manager on an ephemeral port with its
// zhttp sockets under t.TempDir().
//
// With CONNMGR_REFERENCE=/usr/bin/condure the same tests run against the
// real condure instead, to check that what they expect is what condure does
// (tests of our deliberate differences skip themselves then).
func startServer(t testing.TB, mod func(*Config)) (base, addr string) {
	t.Helper()
	base = "ipc://" + t.TempDir() + "/c"
	if ref := os.Getenv("CONNMGR_REFERENCE"); ref != "" {
		if mod != nil {
			t.Skip("timing overrides do not apply to the reference condure")
		}
		return base, startReference(t, ref, base)
	}
	cfg := Config{Listen: []Listen{{Addr: "127.0.0.1:0", Stream: true}}, ZClient: []string{base}}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(testLogLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return base, s.Addrs()[0].String()
}

// fakeServer plays the proxy (or handler): PULL, ROUTER with its identity,
// and an XPUB toward the connection manager's SUB. All its sockets are used
// from the test goroutine only.
type fakeServer struct {
	t                 testing.TB
	id                string
	pull, router, pub *zmq.Socket
}

func newFakeServer(t testing.TB, base, id string, withPull bool) *fakeServer {
	t.Helper()
	f := &fakeServer{t: t, id: id}
	var err error
	if withPull {
		f.pull, err = zmq.New(zmq.Pull, zmq.Options{})
		must(t, err)
		must(t, f.pull.Connect(base+"-out"))
	}
	f.router, err = zmq.New(zmq.Router, zmq.Options{Identity: id})
	must(t, err)
	must(t, f.router.Connect(base+"-out-stream"))
	f.pub, err = zmq.New(zmq.XPub, zmq.Options{SndHWM: 200000})
	must(t, err)
	must(t, f.pub.Connect(base+"-in"))
	t.Cleanup(func() {
		for _, s := range []*zmq.Socket{f.pull, f.router, f.pub} {
			if s != nil {
				s.Close()
			}
		}
	})
	// Wait until the connection manager's subscription reached us, so no
	// packet we publish is dropped.
	deadline := time.Now().Add(5 * time.Second)
	for {
		msg, err := f.pub.Recv()
		if err == nil && len(msg[0]) > 0 && msg[0][0] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no subscription from the connection manager")
		}
	}
	return f
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func recvWithin(s *zmq.Socket, d time.Duration) ([][]byte, error) {
	deadline := time.Now().Add(d)
	for {
		msg, err := s.Recv()
		if err == nil {
			return msg, nil
		}
		if !errors.Is(err, zmq.ErrTimeout) || time.Now().After(deadline) {
			return nil, err
		}
	}
}

// first receives a session's first packet (PUSH/PULL).
func (f *fakeServer) first() *zhttp.Packet {
	f.t.Helper()
	msg, err := recvWithin(f.pull, 5*time.Second)
	must(f.t, err)
	p, err := zhttp.ParseMessage(msg[0])
	must(f.t, err)
	return p
}

// later receives a packet routed to this server's identity.
func (f *fakeServer) later() *zhttp.Packet {
	f.t.Helper()
	msg, err := recvWithin(f.router, 5*time.Second)
	must(f.t, err)
	if len(msg) != 3 || len(msg[1]) != 0 {
		f.t.Fatalf("ROUTER frames %q", msg)
	}
	p, err := zhttp.ParseMessage(msg[2])
	must(f.t, err)
	return p
}

// nothing asserts no packet is routed to this server within d.
func (f *fakeServer) nothing(d time.Duration) {
	f.t.Helper()
	if msg, err := recvWithin(f.router, d); err == nil {
		f.t.Fatalf("unexpected packet %q", msg)
	}
}

// laterData is later, skipping keep-alives (condure sends them at will).
func (f *fakeServer) laterData() *zhttp.Packet {
	f.t.Helper()
	for {
		if p := f.later(); p.Type != zhttp.KeepAlive {
			return p
		}
	}
}

// noData asserts that nothing but keep-alives is routed here within d.
func (f *fakeServer) noData(d time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		msg, err := recvWithin(f.router, time.Until(deadline))
		if err != nil {
			return
		}
		if p, err := zhttp.ParseMessage(msg[2]); err != nil || p.Type != zhttp.KeepAlive {
			f.t.Fatalf("unexpected packet %q", msg)
		}
	}
}

func (f *fakeServer) send(p *zhttp.Packet) {
	f.t.Helper()
	p.From, p.HasSeq = f.id, true
	must(f.t, f.pub.Send(p.AppendPub(nil, "condure")))
}

func dial(t testing.TB, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	must(t, err)
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// readHead reads a response head (through the blank line).
func readHead(t testing.TB, br *bufio.Reader) string {
	t.Helper()
	var sb strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading head after %q: %v", sb.String(), err)
		}
		sb.WriteString(line)
		if line == "\r\n" {
			return sb.String()
		}
	}
}

func readN(t testing.TB, br *bufio.Reader, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(br, b); err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
	return string(b)
}

func expectEOF(t testing.TB, br *bufio.Reader) {
	t.Helper()
	if b, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("expected close, got %q %v", b, err)
	}
}

func hdr(kv ...string) zhttp.Headers {
	var h zhttp.Headers
	for i := 0; i+1 < len(kv); i += 2 {
		h = append(h, zhttp.Header{Name: kv[i], Value: kv[i+1]})
	}
	return h
}

func check(t testing.TB, what string, got, want any) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}

var testLogLevel = func() zerolog.Level {
	if os.Getenv("CONNMGR_DEBUG") != "" {
		return zerolog.TraceLevel
	}
	return zerolog.InfoLevel
}()

func startReference(t testing.TB, path, base string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(path, "--listen="+addr+",stream", "--zclient-stream="+base, "--log-level=1")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	must(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	testwait.For(t, 5*time.Second, func() error {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	})
	return addr
}

// ours skips a test of deliberate behaviour of ours when running against
// the reference condure.
func ours(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CONNMGR_REFERENCE") != "" {
		t.Skip("differs from condure on purpose: " + why)
	}
}
