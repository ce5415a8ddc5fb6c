package proxy

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/proto/grip"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

func hdr(kv ...string) zhttp.Headers {
	var h zhttp.Headers
	for i := 0; i < len(kv); i += 2 {
		h = append(h, zhttp.Header{Name: kv[i], Value: kv[i+1]})
	}
	return h
}

func TestPlainRequest(t *testing.T) {
	r := newRig(t, []string{"* backend.local:8080"}, "x_forwarded_for=append\n")
	r.request("1-0-0", "GET", "http://example.com:7999/a/b?q=1",
		hdr("Host", "example.com:7999", "Connection", "keep-alive", "Grip-Sig", "forged",
			"X-Forwarded-For", "1.2.3.4", "Accept-Encoding", "gzip", "User-Agent", "t"), nil, false, 8192)
	ack := r.clientRecv()
	if ack.Type != zhttp.KeepAlive || ack.Seq != 0 || !ack.Ext.Multi || ack.ID != "1-0-0" {
		t.Fatalf("ack %+v", ack)
	}
	z := r.zurlFirst()
	if z.Method != "GET" || z.URI != "http://example.com:7999/a/b?q=1" || !z.Stream || z.Credits != 200000 ||
		z.ConnectHost != "backend.local" || z.ConnectPort != 8080 || !z.IgnorePolicies || !z.Ext.Multi ||
		z.More || z.Seq != 0 || z.From != testID || len(z.ID) != 36 {
		t.Fatalf("zurl request %+v", z)
	}
	want := []string{"Host", "User-Agent", "Grip-Sig", "Grip-Feature", "X-Forwarded-For"}
	if len(z.Headers) != len(want) {
		t.Fatalf("headers %v", z.Headers)
	}
	for i, n := range want {
		if z.Headers[i].Name != n {
			t.Fatalf("headers %v, want names %v", z.Headers, want)
		}
	}
	key, _ := grip.ParseKey("changeme", "")
	if err := key.Verify(z.Headers.Get("Grip-Sig"), time.Now()); err != nil {
		t.Errorf("Grip-Sig: %v", err)
	}
	if z.Headers.Get("Grip-Feature") != grip.Feature || z.Headers.Get("X-Forwarded-For") != "1.2.3.4, 10.1.2.3" {
		t.Errorf("headers %v", z.Headers)
	}
	// Only what works is announced: no next links, filters or sessions yet.
	if f := z.Headers.Get("Grip-Feature"); f != "status" {
		t.Errorf("Grip-Feature %q, want only status", f)
	}
	r.zurlSend(z.ID, 0, zhttp.Packet{Type: zhttp.KeepAlive, Ext: zhttp.Ext{Multi: true}})
	r.zurlSend(z.ID, 1, zhttp.Packet{Code: 200, HasCode: true, Reason: "OK",
		Headers: hdr("Content-Type", "text/plain", "Content-Length", "3", "Connection", "close"), Body: []byte("hi\n")})
	resp := r.clientRecv()
	if resp.Seq != 1 || resp.Code != 200 || resp.Reason != "OK" || string(resp.Body) != "hi\n" || resp.More {
		t.Fatalf("response %+v", resp)
	}
	if len(resp.Headers) != 2 || resp.Headers.Has("Connection") {
		t.Fatalf("response headers %v", resp.Headers)
	}
}

// TestStreamingCredits relays 5 MB with an 8 KiB client window: the proxy
// must never send more than the client granted nor ask zurl for more than
// it can buffer.
func TestStreamingCredits(t *testing.T) {
	r := newRig(t, []string{"* 127.0.0.1:9"}, "")
	r.request("1-0-1", "GET", "http://h/big", hdr("Host", "h"), nil, false, 8192)
	r.clientRecv()
	z := r.zurlFirst()
	const total = 5 << 20
	src := bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz012345"), total/32)
	zCredits := z.Credits
	zSeq := int64(0)
	r.zurlSend(z.ID, zSeq, zhttp.Packet{Type: zhttp.KeepAlive, Ext: zhttp.Ext{Multi: true}})
	zSeq++
	sent := 0
	head := false
	var got bytes.Buffer
	clientGranted := int64(8192)
	deadline := time.Now().Add(60 * time.Second)
	for got.Len() < total && time.Now().Before(deadline) {
		for zCredits > 0 && sent < total {
			n := min(int(zCredits), 16384, total-sent)
			p := zhttp.Packet{Body: src[sent : sent+n], More: sent+n < total}
			if !head {
				p.Code, p.HasCode, p.Reason, p.Headers = 200, true, "OK", hdr("Content-Type", "application/octet-stream")
				head = true
			}
			r.zurlSend(z.ID, zSeq, p)
			zSeq++
			sent += n
			zCredits -= int64(n)
		}
		if msg, ok := r.clientTry(2 * time.Millisecond); ok {
			_, m, _ := zhttp.SplitPub(msg[0])
			p, err := zhttp.ParseMessage(m)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(p.Body)) > clientGranted {
				t.Fatalf("proxy sent %d bytes with %d credits", len(p.Body), clientGranted)
			}
			clientGranted -= int64(len(p.Body))
			got.Write(p.Body)
			if len(p.Body) > 0 {
				r.clientSend("1-0-1", zhttp.Packet{Type: zhttp.Credit, Credits: int64(len(p.Body)), HasCredits: true})
				clientGranted += int64(len(p.Body))
			}
			if !p.More && got.Len() < total {
				t.Fatalf("response ended after %d bytes", got.Len())
			}
		}
		for {
			msg, err := r.zRouter.Recv()
			if err != nil {
				break
			}
			p, _ := zhttp.ParseMessage(msg[len(msg)-1])
			if p.Type == zhttp.Credit {
				zCredits += p.Credits
			}
		}
		if buffered := int64(sent - got.Len()); buffered > 200000+16384 {
			t.Fatalf("proxy buffers %d bytes", buffered)
		}
	}
	if !bytes.Equal(got.Bytes(), src) {
		t.Fatalf("got %d bytes, want %d (equal=%v)", got.Len(), total, bytes.Equal(got.Bytes(), src[:got.Len()]))
	}
}

func TestFailover(t *testing.T) {
	r := newRig(t, []string{"* 127.0.0.1:1 127.0.0.1:2"}, "")
	r.request("1-0-2", "GET", "http://h/", hdr("Host", "h"), nil, false, 8192)
	r.clientRecv()
	z1 := r.zurlFirst()
	if z1.ConnectPort != 1 {
		t.Fatalf("first target %d", z1.ConnectPort)
	}
	r.zurlSend(z1.ID, 0, zhttp.Packet{Type: zhttp.KeepAlive})
	r.zurlSend(z1.ID, 1, zhttp.Packet{Type: zhttp.Error, Condition: "remote-connection-failed"})
	z2 := r.zurlFirst()
	if z2.ConnectPort != 2 || z2.ID == z1.ID {
		t.Fatalf("second request %+v", z2)
	}
	r.zurlSend(z2.ID, 0, zhttp.Packet{Code: 204, HasCode: true, Reason: "No Content"})
	if p := r.clientRecv(); p.Code != 204 || p.More {
		t.Fatalf("response %+v", p)
	}
	// All targets failing ⇒ 502.
	r.request("1-0-3", "GET", "http://h/", hdr("Host", "h"), nil, false, 8192)
	r.clientRecv()
	for range 2 {
		z := r.zurlFirst()
		r.zurlSend(z.ID, 0, zhttp.Packet{Type: zhttp.Error, Condition: "connection-timeout"})
	}
	if p := r.clientRecv(); p.Code != 502 || string(p.Body) != textProxyError {
		t.Fatalf("response %+v", p)
	}
}

func TestNoRoute(t *testing.T) {
	r := newRig(t, []string{"example.com 127.0.0.1:1"}, "")
	r.request("1-0-4", "GET", "http://other.org:7999/", hdr("Host", "other.org:7999"), nil, false, 8192)
	r.clientRecv()
	p := r.clientRecv()
	if p.Code != 502 || p.Reason != "Bad Gateway" || string(p.Body) != "No route for host: other.org\n" ||
		p.Headers.Get("Content-Type") != "text/plain" || p.More {
		t.Fatalf("response %+v", p)
	}
}

func TestBadRequests(t *testing.T) {
	r := newRig(t, []string{"* test"}, "")
	p := zhttp.Packet{From: "condure", ID: "x1", Seq: 0, HasSeq: true, Method: "GET", URI: "http://h/", Credits: 10, HasCredits: true}
	_ = r.cPush.Send(p.AppendMessage(nil))
	if q := r.clientRecv(); q.Type != zhttp.Error || q.Condition != "bad-request" {
		t.Fatalf("no stream: %+v", q)
	}
	p = zhttp.Packet{From: "condure", ID: "x2", Seq: 0, HasSeq: true, Method: "GET", URI: "ws://h/", Credits: 10, HasCredits: true}
	_ = r.cPush.Send(p.AppendMessage(nil))
	// WebSockets to the built-in test target are not built: a 502.
	if q := r.clientRecv(); q.Type != zhttp.Error || q.Condition != "rejected" || q.Code != 502 {
		t.Fatalf("ws: %+v", q)
	}
}

func TestGripHoldHandoff(t *testing.T) {
	r := newRig(t, []string{"*,prefix=p. 127.0.0.1:9,sub=extra"}, "")
	// With Content-Length the body streams as it comes (without, it is
	// gathered first: TestChunkedBodyGathered).
	r.request("1-0-5", "POST", "http://h/hold", hdr("Host", "h", "Content-Type", "text/plain", "Content-Length", "7"), nil, true, 8192)
	if ack := r.clientRecv(); ack.Type != zhttp.Credit || ack.Credits != 200000 {
		t.Fatalf("ack %+v", ack)
	}
	z := r.zurlFirst()
	if !z.More {
		t.Fatalf("first packet should announce more body: %+v", z)
	}
	r.clientSend("1-0-5", zhttp.Packet{Body: []byte("payload")})
	r.zurlSend(z.ID, 0, zhttp.Packet{Type: zhttp.Credit, Credits: 1000, HasCredits: true, Ext: zhttp.Ext{Multi: true}})
	if b := r.zurlRecv(5 * time.Second); string(b.Body) != "payload" || b.More || b.Seq != 1 {
		t.Fatalf("body packet %+v", b)
	}
	r.zurlSend(z.ID, 1, zhttp.Packet{Code: 200, HasCode: true, Reason: "OK",
		Headers: hdr("Content-Type", "text/plain", "Grip-Hold", "stream", "Grip-Channel", "news"),
		Body:    []byte("stream start\n")})
	hs := r.clientRecv()
	if hs.Type != zhttp.HandoffStart {
		t.Fatalf("want handoff-start, got %+v", hs)
	}
	r.clientSend("1-0-5", zhttp.Packet{Type: zhttp.Credit, Credits: 100, HasCredits: true})
	r.clientSend("1-0-5", zhttp.Packet{Type: zhttp.HandoffProceed})
	a := r.accept()
	s := a.Sessions[0]
	if s.Sender != "condure" || s.ID != "1-0-5" || s.InSeq != 4 || s.OutSeq != hs.Seq+1 || s.OutCredits != 8292 ||
		!s.Multi || s.PeerAddress != "10.1.2.3" {
		t.Fatalf("session %+v (handoff-start seq %d)", s, hs.Seq)
	}
	if a.Request.Method != "POST" || a.Request.URI != "http://h/hold" || string(a.Request.Body) != "payload" ||
		a.Request.Headers.Get("Grip-Sig") == "" {
		t.Fatalf("request %+v", a.Request)
	}
	if a.Response.Code != 200 || a.Response.Headers.Get("Grip-Hold") != "stream" || string(a.Response.Body) != "stream start\n" ||
		a.ResponseSent || a.ChannelPrefix != "p." || len(a.Channels) != 1 || a.Channels[0] != "extra" || !a.Trusted {
		t.Fatalf("accept %+v", a)
	}
}

func TestInvalidGrip(t *testing.T) {
	r := newRig(t, []string{"* 127.0.0.1:9"}, "")
	r.request("1-0-6", "GET", "http://h/", hdr("Host", "h"), nil, false, 8192)
	r.clientRecv()
	z := r.zurlFirst()
	r.zurlSend(z.ID, 0, zhttp.Packet{Code: 200, HasCode: true, Reason: "OK", Headers: hdr("Grip-Hold", "bogus", "Grip-Channel", "x")})
	p := r.clientRecv()
	if p.Code != 502 || string(p.Body) != textProxyError || p.Headers.Get("Content-Type") != "text/plain" {
		t.Fatalf("response %+v", p)
	}
}

func TestGripNoHold(t *testing.T) {
	r := newRig(t, []string{"* 127.0.0.1:9"}, "")
	r.request("1-0-7", "GET", "http://h/", hdr("Host", "h"), nil, false, 8192)
	r.clientRecv()
	z := r.zurlFirst()
	r.zurlSend(z.ID, 0, zhttp.Packet{Code: 200, HasCode: true, Reason: "OK",
		Headers: hdr("Content-Type", "text/plain", "Grip-Status", "404 Nope", "Grip-Foo", "x"), Body: []byte("gone\n")})
	p := r.clientRecv()
	if p.Code != 404 || p.Reason != "Nope" || string(p.Body) != "gone\n" || p.Headers.Get("Grip-Foo") != "" ||
		p.Headers.Get("Content-Length") != "5" {
		t.Fatalf("response %+v", p)
	}
}

func TestTestRoute(t *testing.T) {
	r := newRig(t, []string{"* test"}, "")
	r.request("1-0-8", "GET", "http://h/", hdr("Host", "h"), nil, false, 8192)
	r.clientRecv()
	if p := r.clientRecv(); p.Code != 200 || string(p.Body) != testHello || p.Headers.Get("Content-Type") != "text/plain" {
		t.Fatalf("GET / %+v", p)
	}
	r.request("1-0-9", "GET", "http://h/nope", hdr("Host", "h"), nil, false, 8192)
	r.clientRecv()
	if p := r.clientRecv(); p.Code != 404 || string(p.Body) != testNotFound {
		t.Fatalf("GET /nope %+v", p)
	}
	r.request("1-0-a", "GET", "http://h/response?channel=a&channel=b", hdr("Host", "h"), nil, false, 8192)
	r.clientRecv()
	if p := r.clientRecv(); p.Type != zhttp.HandoffStart {
		t.Fatalf("want handoff-start, got %+v", p)
	}
	r.clientSend("1-0-a", zhttp.Packet{Type: zhttp.HandoffProceed})
	a := r.accept()
	if a.Response.Headers.Get("Grip-Hold") != "response" || a.Response.Headers.Get("Grip-Channel") != "a, b" ||
		string(a.Response.Body) != testResponse || a.Sessions[0].OutSeq != 2 {
		t.Fatalf("accept %+v", a)
	}
	r.request("1-0-b", "GET", "http://h/stream", hdr("Host", "h"), nil, false, 8192)
	r.clientRecv()
	r.clientRecv()
	r.clientSend("1-0-b", zhttp.Packet{Type: zhttp.HandoffProceed})
	if a := r.accept(); string(a.Response.Body) != testStream || !strings.Contains(a.Response.Headers.Get("Grip-Channel"), "test") {
		t.Fatalf("accept %+v", a)
	}
}

// The ack of a request without a body waits for the response: a prompt
// response (or handoff-start) is the first packet, with ext.multi; a slow
// one is preceded by the keep-alive once the delay has passed. A request
// whose body is still to come gets its credits at once.
func TestDeferredAck(t *testing.T) {
	r := newRig(t, []string{"* 127.0.0.1:9"}, "", WithAckDelay(300*time.Millisecond))
	r.request("d-1", "GET", "http://h/fast", hdr("Host", "h"), nil, false, 8192)
	z := r.zurlFirst()
	r.zurlSend(z.ID, 0, zhttp.Packet{Code: 200, HasCode: true, Reason: "OK", Headers: hdr("Content-Type", "text/plain"), Body: []byte("hi\n")})
	if p := r.clientRecv(); p.Seq != 0 || p.Code != 200 || string(p.Body) != "hi\n" || !p.Ext.Multi || p.More {
		t.Fatalf("first packet %+v", p)
	}
	// Nothing may follow, not even once the ack delay has passed.
	if msg, ok := r.clientTry(500 * time.Millisecond); ok {
		t.Fatalf("packet after the response: %q", msg)
	}

	start := time.Now()
	r.request("d-2", "GET", "http://h/slow", hdr("Host", "h"), nil, false, 8192)
	z = r.zurlFirst()
	ack := r.clientRecv()
	if ack.Type != zhttp.KeepAlive || ack.Seq != 0 || !ack.Ext.Multi {
		t.Fatalf("late ack %+v", ack)
	}
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Fatalf("ack after %v, want the 300 ms delay", el)
	}
	r.zurlSend(z.ID, 0, zhttp.Packet{Code: 200, HasCode: true, Reason: "OK", Body: []byte("late\n")})
	if p := r.clientRecv(); p.Seq != 1 || p.Ext.Multi || string(p.Body) != "late\n" {
		t.Fatalf("response after the ack %+v", p)
	}

	r.request("d-3", "GET", "http://h/hold", hdr("Host", "h"), nil, false, 8192)
	z = r.zurlFirst()
	r.zurlSend(z.ID, 0, zhttp.Packet{Code: 200, HasCode: true, Reason: "OK",
		Headers: hdr("Content-Type", "text/plain", "Grip-Hold", "stream", "Grip-Channel", "c"), Body: []byte("start\n")})
	hs := r.clientRecv()
	if hs.Type != zhttp.HandoffStart || hs.Seq != 0 || !hs.Ext.Multi {
		t.Fatalf("want handoff-start first, got %+v", hs)
	}
	r.clientSend("d-3", zhttp.Packet{Type: zhttp.HandoffProceed})
	if a := r.accept(); a.Sessions[0].OutSeq != 1 || !a.Sessions[0].Multi {
		t.Fatalf("accept %+v", a.Sessions[0])
	}

	r.request("d-4", "POST", "http://h/post", hdr("Host", "h"), []byte("ab"), true, 8192)
	if ack := r.clientRecv(); ack.Type != zhttp.Credit || ack.Seq != 0 || ack.Credits != 200000-2 || !ack.Ext.Multi {
		t.Fatalf("credit ack %+v", ack)
	}
}
