package zurl

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pushpin-go/pushpin/proto/zhttp"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

// realZurl is Pushpin's zurl 1.11, the reference some tests compare with.
const realZurl = "/usr/bin/zurl"

// startRealZurl runs /usr/bin/zurl on ipc sockets and connects a
// requester to it (srv is nil: only the wire is shared).
func startRealZurl(t *testing.T) *requester {
	t.Helper()
	if _, err := os.Stat(realZurl); err != nil {
		t.Skipf("zurl not installed (%s)", realZurl)
	}
	dir, err := os.MkdirTemp("", "zr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	in, inStream, out := "ipc://"+filepath.Join(dir, "in"), "ipc://"+filepath.Join(dir, "in-stream"), "ipc://"+filepath.Join(dir, "out")
	conf := filepath.Join(dir, "zurl.conf")
	body := "[General]\ninstance_id=zurl-real\nin_spec=" + in + "\nin_stream_spec=" + inStream + "\nout_spec=" + out +
		"\ndefpolicy=allow\nmax_open_requests=100\nbuffer_size=200000\ntimeout=600\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(realZurl, "--config="+conf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	r := &requester{t: t, zid: "zurl-real", seq: map[string]int64{}, pending: map[string][]*zhttp.Packet{}}
	o := zmq.Options{RecvTimeout: 100}
	o.Subscribe = []string{"proxy "}
	r.sub = connectSock(t, zmq.Sub, o, out)
	r.push = connectSock(t, zmq.Push, zmq.Options{}, in)
	r.router = connectSock(t, zmq.Router, zmq.Options{RouterMandatory: true}, inStream)
	t.Cleanup(func() { r.sub.Close(); r.push.Close(); r.router.Close() })
	r.subscribe()
	return r
}

// wsOpen sends a zws first packet as Pushpin's proxy does (no method, no
// stream, credits 200000 unless set, ext.multi, ignore-policies) and
// returns the first reply.
func (r *requester) wsOpen(p *zhttp.Packet) *zhttp.Packet {
	r.t.Helper()
	p.From, p.HasSeq, p.Seq = "proxy", true, 0
	p.Ext.Multi, p.IgnorePolicies = true, true
	if !p.HasCredits {
		p.Credits, p.HasCredits = 200000, true
	}
	r.seq[p.ID] = 1
	if err := r.push.Send(p.AppendMessage(nil)); err != nil {
		r.t.Fatal(err)
	}
	return r.must(p.ID, 10*time.Second)
}

// next returns the session's next packet, skipping keep-alives, and
// checks that seqs follow on.
func (r *requester) next(id string, last *int64) *zhttp.Packet {
	r.t.Helper()
	for {
		p := r.must(id, 10*time.Second)
		if p.Seq != *last+1 {
			r.t.Fatalf("%s: seq %d after %d: %+v", id, p.Seq, *last, p)
		}
		*last = p.Seq
		if p.Type != zhttp.KeepAlive {
			return p
		}
	}
}

// wsBackend is a gorilla/websocket server; serve runs per connection.
func wsBackend(t *testing.T, up *websocket.Upgrader, serve func(c *websocket.Conn, r *http.Request)) *httptest.Server {
	t.Helper()
	if up == nil {
		up = &websocket.Upgrader{}
	}
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		c, err := up.Upgrade(w, req, nil)
		if err != nil {
			return // the upgrader answered the refusal
		}
		defer c.Close()
		serve(c, req)
	}))
	t.Cleanup(be.Close)
	return be
}

// wsURI is the ws:// uri of a test server.
func wsURI(be *httptest.Server, path string) string {
	return "ws" + strings.TrimPrefix(be.URL, "http") + path
}

// closedAddr is a local address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

// waitChan waits for a value from c.
func waitChan[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

// httptestServer runs an HTTP handler and returns its host:port.
func httptestServer(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// fmtP prints a packet's fields that matter to zws, for test failures
// and for comparing sequences with zurl's.
func fmtP(p *zhttp.Packet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "seq=%d type=%q", p.Seq, p.Type)
	if p.HasCode {
		fmt.Fprintf(&b, " code=%d", p.Code)
	}
	if p.Reason != "" {
		fmt.Fprintf(&b, " reason=%q", p.Reason)
	}
	if p.ContentType != "" {
		fmt.Fprintf(&b, " ct=%s", p.ContentType)
	}
	if len(p.Body) > 40 {
		fmt.Fprintf(&b, " body=%d bytes", len(p.Body))
	} else if len(p.Body) > 0 {
		fmt.Fprintf(&b, " body=%q", p.Body)
	}
	if p.More {
		b.WriteString(" more")
	}
	if p.HasCredits {
		fmt.Fprintf(&b, " credits=%d", p.Credits)
	}
	if p.Condition != "" {
		fmt.Fprintf(&b, " cond=%s", p.Condition)
	}
	return b.String()
}
