package proxy

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/internal/testwait"
	ts "github.com/pushpin-go/pushpin/proto/tnetstring"
	"github.com/pushpin-go/pushpin/proto/wscontrol"
	"github.com/pushpin-go/pushpin/proto/zhttp"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

// wsRig is the proxy rig plus a fake handler on the ws-control link and
// the command socket.
type wsRig struct {
	*rig
	hIn  *zmq.Socket // PULL: what the proxy sends the handler
	hOut *zmq.Socket // PUSH: what the handler sends the proxy
	cmd  *zmq.Socket // DEALER: zrpc commands
	zSeq map[string]int64
}

func newWSRig(t *testing.T, routes ...string) *wsRig {
	t.Helper()
	// No reading grace: a client short of credits is held to the bound.
	r := &wsRig{rig: newRig(t, routes, "", WithWSReadingGrace(0)), zSeq: map[string]int64{}}
	mk := func(typ zmq.Type, name string) *zmq.Socket {
		s, err := zmq.New(typ, zmq.Options{RecvTimeout: 2})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Connect("ipc://" + filepath.Join(r.dir, "pushpin-"+name)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s
	}
	r.hIn, r.hOut, r.cmd = mk(zmq.Pull, "ws-control-out"), mk(zmq.Push, "ws-control-in"), mk(zmq.Dealer, "proxy-command")
	return r
}

// wsFirst sends a connection-manager WebSocket handshake request.
func (r *wsRig) wsFirst(id string, credits int64, mdata bool, h zhttp.Headers) {
	r.t.Helper()
	p := zhttp.Packet{From: "condure", ID: id, Seq: 0, HasSeq: true, Ext: zhttp.Ext{Multi: true, MultiData: mdata},
		URI: "ws://example.com/chat", Headers: h, HasHeaders: true, Credits: credits, HasCredits: true,
		PeerAddress: "10.1.2.3"}
	r.cSeq[id] = 1
	if err := r.cPush.Send(p.AppendMessage(nil)); err != nil {
		r.t.Fatal(err)
	}
}

func (r *wsRig) zsend(zid string, p zhttp.Packet) {
	r.t.Helper()
	seq := r.zSeq[zid]
	r.zSeq[zid]++
	r.zurlSend(zid, seq, p)
}

// open runs a handshake through to the client's 101 and returns the
// backend request and the 101.
func (r *wsRig) open(id string, credits int64, mdata bool, resp zhttp.Headers) (*zhttp.Packet, *zhttp.Packet) {
	r.t.Helper()
	r.wsFirst(id, credits, mdata, hdr("Host", "example.com"))
	z := r.zurlFirst()
	r.zsend(z.ID, zhttp.Packet{Code: 101, HasCode: true, Reason: "Switching Protocols", Headers: resp,
		Credits: 200000, HasCredits: true, Ext: zhttp.Ext{Multi: true}})
	a := r.clientRecv()
	if a.Code != 101 || a.ID != id {
		r.t.Fatalf("want 101 for %s, got %+v", id, a)
	}
	return z, a
}

func (r *wsRig) ctlRecv() []wscontrol.Item {
	r.t.Helper()
	items, err := wscontrol.Parse(recvOne(r.t, r.hIn, 5*time.Second)[0])
	if err != nil {
		r.t.Fatal(err)
	}
	return items
}

// ctlNext returns the next item of type typ, skipping others.
func (r *wsRig) ctlNext(typ wscontrol.Type) wscontrol.Item {
	r.t.Helper()
	for {
		for _, it := range r.ctlRecv() {
			if it.Type == typ {
				return it
			}
		}
	}
}

func (r *wsRig) ctlSend(items ...wscontrol.Item) {
	r.t.Helper()
	if err := r.hOut.Send(wscontrol.Append(nil, items)); err != nil {
		r.t.Fatal(err)
	}
}

func TestWSPassthrough(t *testing.T) {
	r := newWSRig(t, "* backend.local:8080")
	r.wsFirst("ws-1", 8192, false, hdr("Host", "example.com", "Upgrade", "websocket", "Connection", "Upgrade",
		"Sec-WebSocket-Extensions", "permessage-deflate", "Sec-WebSocket-Protocol", "chat"))
	z := r.zurlFirst()
	if z.URI != "ws://example.com/chat" || z.Stream || z.Credits != 200000 || !z.Ext.Multi ||
		z.ConnectHost != "backend.local" || z.ConnectPort != 8080 {
		t.Fatalf("zurl request %+v", z)
	}
	if z.Headers.Get("Sec-WebSocket-Extensions") != "grip" || len(z.Headers.Values("Sec-WebSocket-Extensions")) != 1 ||
		z.Headers.Has("Connection") || z.Headers.Get("Sec-WebSocket-Protocol") != "chat" || z.Headers.Get("Grip-Sig") == "" {
		t.Fatalf("zurl request headers %v", z.Headers)
	}
	r.zsend(z.ID, zhttp.Packet{Code: 101, HasCode: true, Reason: "Switching Protocols",
		Headers: hdr("Upgrade", "websocket", "Sec-WebSocket-Protocol", "chat", "Sec-WebSocket-Accept", "x"),
		Credits: 200000, HasCredits: true, Ext: zhttp.Ext{Multi: true}})
	a := r.clientRecv()
	if a.Code != 101 || a.Credits != 200000 || !a.Ext.Multi || a.Type != zhttp.Data ||
		len(a.Headers) != 1 || a.Headers.Get("Sec-WebSocket-Protocol") != "chat" {
		t.Fatalf("101 %+v", a)
	}
	// Client to backend, credited back.
	r.clientSend("ws-1", zhttp.Packet{ContentType: "text", Body: []byte("hello")})
	if p := r.zurlRecv(5 * time.Second); p.ContentType != "text" || string(p.Body) != "hello" {
		t.Fatalf("to backend %+v", p)
	}
	if p := r.clientRecv(); p.Type != zhttp.Credit || p.Credits != 5 {
		t.Fatalf("client credit %+v", p)
	}
	// Backend to client, split by the client's credits.
	big := bytes.Repeat([]byte{7}, 10000)
	r.zsend(z.ID, zhttp.Packet{ContentType: "binary", Body: big})
	p1 := r.clientRecv()
	if p1.ContentType != "binary" || len(p1.Body) != 8192 || !p1.More {
		t.Fatalf("first part %+v", p1.Type)
	}
	r.clientSend("ws-1", zhttp.Packet{Type: zhttp.Credit, Credits: 8192, HasCredits: true})
	p2 := r.clientRecv()
	if p2.ContentType != "binary" || len(p2.Body) != 1808 || p2.More {
		t.Fatalf("second part %d more=%v", len(p2.Body), p2.More)
	}
	if p := r.zurlRecv(5 * time.Second); p.Type != zhttp.Credit || p.Credits != 10000 {
		t.Fatalf("backend credit %+v", p)
	}
	// Ping relayed, close codes kept both ways.
	r.zsend(z.ID, zhttp.Packet{Type: zhttp.Ping, Body: []byte("pp")})
	if p := r.clientRecv(); p.Type != zhttp.Ping || string(p.Body) != "pp" {
		t.Fatalf("ping %+v", p)
	}
	r.clientSend("ws-1", zhttp.Packet{Type: zhttp.Close, Code: 4001, HasCode: true, Body: []byte("bye")})
	if p := r.zurlRecv(5 * time.Second); p.Type == zhttp.Credit {
		p = r.zurlRecv(5 * time.Second)
		if p.Type != zhttp.Close || p.Code != 4001 || string(p.Body) != "bye" {
			t.Fatalf("close to backend %+v", p)
		}
	} else if p.Type != zhttp.Close || p.Code != 4001 || string(p.Body) != "bye" {
		t.Fatalf("close to backend %+v", p)
	}
	r.zsend(z.ID, zhttp.Packet{Type: zhttp.Close, Code: 4001, HasCode: true})
	if p := r.clientRecv(); p.Type != zhttp.Close || p.Code != 4001 {
		t.Fatalf("close to client %+v", p)
	}
	testwait.For(t, 2*time.Second, func() error {
		if r.px.wsSessions.get(clientKey("condure", "ws-1")) != nil {
			return errString("session still registered")
		}
		return nil
	})
}

type errString string

func (e errString) Error() string { return string(e) }

func TestWSRejectAndFailover(t *testing.T) {
	r := newWSRig(t, "* 127.0.0.1:1 127.0.0.1:2")
	r.wsFirst("ws-r", 8192, false, hdr("Host", "example.com"))
	z := r.zurlFirst()
	r.zsend(z.ID, zhttp.Packet{Type: zhttp.Error, Condition: "remote-connection-failed"})
	z2 := r.zurlFirst()
	if z2.ConnectPort != 2 {
		t.Fatalf("failover to %+v", z2)
	}
	r.zsend(z2.ID, zhttp.Packet{Type: zhttp.Error, Condition: "rejected", Code: 403, HasCode: true,
		Reason: "Forbidden", Headers: hdr("Content-Type", "text/plain"), Body: []byte("no\n")})
	p := r.clientRecv()
	if p.Type != zhttp.Error || p.Condition != "rejected" || p.Code != 403 || string(p.Body) != "no\n" ||
		p.Headers.Get("Content-Type") != "text/plain" {
		t.Fatalf("reject %+v", p)
	}
	r.wsFirst("ws-r2", 8192, false, hdr("Host", "example.com"))
	r.zsend(r.zurlFirst().ID, zhttp.Packet{Type: zhttp.Error, Condition: "connection-timeout"})
	r.zsend(r.zurlFirst().ID, zhttp.Packet{Type: zhttp.Error, Condition: "remote-connection-failed"})
	if p := r.clientRecv(); p.Type != zhttp.Error || p.Condition != "rejected" || p.Code != 502 {
		t.Fatalf("502 %+v", p)
	}
}

func TestWSGrip(t *testing.T) {
	r := newWSRig(t, "*,prefix=p. 127.0.0.1:9,sub=implicit")
	z, a := r.open("ws-g", 8192, false, hdr("Sec-WebSocket-Extensions", `grip; message-prefix="x:"`, "Grip-Channel", "fromhead"))
	if a.Headers.Has("Sec-WebSocket-Extensions") || a.Headers.Has("Grip-Channel") {
		t.Fatalf("101 headers %v", a.Headers)
	}
	items := r.ctlRecv()
	if len(items) != 3 || items[0].Type != wscontrol.Here || !items[0].MultiSend || items[0].TTL != 60 ||
		items[0].ChannelPrefix != "p." || items[0].URI != "ws://example.com/chat" ||
		items[1].Type != wscontrol.Subscribe || items[1].Channel != "implicit" ||
		items[2].Type != wscontrol.Subscribe || items[2].Channel != "fromhead" || items[2].ReqID == "" {
		t.Fatalf("items %+v", items)
	}
	cid := items[0].CID
	r.zsend(z.ID, zhttp.Packet{ContentType: "text", Body: []byte(`c:{"type":"subscribe","channel":"x"}`)})
	r.zsend(z.ID, zhttp.Packet{ContentType: "text", Body: []byte(`c:not json`)})
	r.zsend(z.ID, zhttp.Packet{ContentType: "text", Body: []byte("unprefixed")})
	r.zsend(z.ID, zhttp.Packet{ContentType: "text", Body: []byte("x:hello")})
	g := r.ctlNext(wscontrol.Grip)
	if g.CID != cid || string(g.Message) != `{"type":"subscribe","channel":"x"}` || g.ReqID == "" {
		t.Fatalf("grip item %+v", g)
	}
	if p := r.clientRecv(); p.ContentType != "text" || string(p.Body) != "hello" {
		t.Fatalf("client got %q", p.Body)
	}
	// The backend gets its credits back for all four messages.
	got := int64(0)
	for got < 63 {
		p := r.zurlRecv(5 * time.Second)
		got += p.Credits
	}
	if got != 63 {
		t.Fatalf("backend credited %d, want 63", got)
	}
	// A handler send is written and acked.
	s := wscontrol.NewItem(cid, wscontrol.Send)
	s.ContentType, s.Message, s.ReqID = "binary", []byte("pub"), "7"
	r.ctlSend(s)
	if p := r.clientRecv(); p.ContentType != "binary" || string(p.Body) != "pub" {
		t.Fatalf("client got %+v", p)
	}
	if ack := r.ctlNext(wscontrol.Ack); ack.ReqID != "7" || ack.CID != cid {
		t.Fatalf("ack %+v", ack)
	}
	// Detach: the backend gets a close, client messages are discarded,
	// the handler can still send.
	d := wscontrol.NewItem(cid, wscontrol.Detach)
	r.ctlSend(d)
	if p := r.zurlRecv(5 * time.Second); p.Type != zhttp.Close {
		t.Fatalf("detach: backend got %+v", p)
	}
	r.clientSend("ws-g", zhttp.Packet{ContentType: "text", Body: []byte("dropped")})
	if p := r.clientRecv(); p.Type != zhttp.Credit || p.Credits != 7 {
		t.Fatalf("credit for discarded message %+v", p)
	}
	s.ReqID = ""
	r.ctlSend(s)
	if p := r.clientRecv(); string(p.Body) != "pub" {
		t.Fatalf("after detach %+v", p)
	}
	// Unknown cid: cancel.
	r.ctlSend(wscontrol.NewItem("nope", wscontrol.Send))
	if c := r.ctlNext(wscontrol.Cancel); c.CID != "nope" {
		t.Fatalf("cancel %+v", c)
	}
	// The client closes; the handler hears gone.
	r.clientSend("ws-g", zhttp.Packet{Type: zhttp.Close, Code: 1000, HasCode: true})
	if p := r.clientRecv(); p.Type != zhttp.Close || p.Code != 1000 {
		t.Fatalf("close reply %+v", p)
	}
	if gone := r.ctlNext(wscontrol.Gone); gone.CID != cid {
		t.Fatalf("gone %+v", gone)
	}
}

// A client whose credits stopped gets the handler's messages queued up to
// 1 MiB, then a 1008 close; nothing is dropped before that.
func TestWSQueueBound(t *testing.T) {
	r := newWSRig(t, "* 127.0.0.1:9")
	z, _ := r.open("ws-q", 1000, false, hdr("Sec-WebSocket-Extensions", "grip"))
	cid := r.ctlNext(wscontrol.Here).CID
	msg := bytes.Repeat([]byte("m"), 100000)
	for i := 0; i < 12; i++ {
		it := wscontrol.NewItem(cid, wscontrol.Send)
		it.Message = msg
		r.ctlSend(it)
	}
	p := r.clientRecv()
	if len(p.Body) != 1000 || !p.More {
		t.Fatalf("first part %d", len(p.Body))
	}
	// The message under way is finished (condure writes no close inside
	// a message), then the close comes; the rest was discarded.
	s := r.px.wsSessions.get(clientKey("condure", "ws-q"))
	testwait.For(t, 5*time.Second, func() error {
		closing := false
		s.with(func() { closing = s.closing })
		if !closing {
			return errString("not closing yet")
		}
		return nil
	})
	r.clientSend("ws-q", zhttp.Packet{Type: zhttp.Credit, Credits: 500000, HasCredits: true})
	if p = r.clientRecv(); len(p.Body) != 99000 || p.More {
		t.Fatalf("rest %d more=%v", len(p.Body), p.More)
	}
	p = r.clientRecv()
	if p.Type != zhttp.Close || p.Code != 1008 || string(p.Body) != "client cannot keep up" {
		t.Fatalf("want 1008, got type %q code %d, %d bytes", p.Type, p.Code, len(p.Body))
	}
	if p := r.zurlRecv(5 * time.Second); p.Type != zhttp.Close {
		t.Fatalf("backend got %+v", p)
	}
	r.zsend(z.ID, zhttp.Packet{Type: zhttp.Close})
	r.clientSend("ws-q", zhttp.Packet{Type: zhttp.Close, Code: 1008, HasCode: true})
	r.ctlNext(wscontrol.Gone)
}

// A send with cids reaches sessions behind an ext.multi-data connection
// manager in one shared packet, the others one by one.
func TestWSMultiSend(t *testing.T) {
	r := newWSRig(t, "* 127.0.0.1:9")
	var cids []string
	for _, c := range []struct {
		id    string
		mdata bool
	}{{"m-1", true}, {"m-2", true}, {"m-3", false}} {
		r.open(c.id, 8192, c.mdata, hdr("Sec-WebSocket-Extensions", "grip"))
		cids = append(cids, r.ctlNext(wscontrol.Here).CID)
	}
	it := wscontrol.NewItem(cids[0], wscontrol.Send)
	it.CIDs, it.Message, it.ReqID = cids[1:], []byte("all"), "9"
	r.ctlSend(it)
	seen := map[string]bool{}
	for len(seen) < 3 {
		p := r.clientRecv()
		if string(p.Body) != "all" {
			t.Fatalf("got %+v", p)
		}
		if len(p.IDs) > 0 {
			if len(p.IDs) != 2 || p.IDs[0].ID != "m-1" || p.IDs[1].ID != "m-2" || p.IDs[0].Seq != 1 {
				t.Fatalf("shared ids %+v", p.IDs)
			}
			seen["m-1"], seen["m-2"] = true, true
			continue
		}
		if p.ID != "m-3" || p.Seq != 1 {
			t.Fatalf("single %+v", p)
		}
		seen["m-3"] = true
	}
	if ack := r.ctlNext(wscontrol.Ack); ack.ReqID != "9" {
		t.Fatalf("ack %+v", ack)
	}
}

// A client that vanishes: the backend gets a close, the handler gone once
// the backend answered.
func TestWSClientCancel(t *testing.T) {
	r := newWSRig(t, "* 127.0.0.1:9")
	z, _ := r.open("ws-c", 8192, false, hdr("Sec-WebSocket-Extensions", "grip"))
	cid := r.ctlNext(wscontrol.Here).CID
	r.clientSend("ws-c", zhttp.Packet{Type: zhttp.Cancel})
	if p := r.zurlRecv(5 * time.Second); p.Type != zhttp.Close || p.Code != 1001 {
		t.Fatalf("backend got %+v", p)
	}
	r.zsend(z.ID, zhttp.Packet{Type: zhttp.Close, Code: 1001, HasCode: true})
	if g := r.ctlNext(wscontrol.Gone); g.CID != cid {
		t.Fatalf("gone %+v", g)
	}
}

// keep-alive-setup makes the proxy ask for the keep-alive when due.
func TestWSKeepAliveSetup(t *testing.T) {
	r := newWSRig(t, "* 127.0.0.1:9")
	r.open("ws-k", 8192, false, hdr("Sec-WebSocket-Extensions", "grip"))
	cid := r.ctlNext(wscontrol.Here).CID
	it := wscontrol.NewItem(cid, wscontrol.KeepAliveSetup)
	it.KeepAliveMode, it.Timeout = "interval", 1
	r.ctlSend(it)
	start := time.Now()
	r.ctlNext(wscontrol.NeedKeepAlive)
	r.ctlNext(wscontrol.NeedKeepAlive)
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Fatalf("two need-keep-alive in %v", d)
	}
}

func TestWSCommand(t *testing.T) {
	r := newWSRig(t, "* 127.0.0.1:9")
	r.open("ws-x", 8192, false, nil)
	var cid string
	testwait.For(t, time.Second, func() error {
		r.px.wsCids.each(func(s *wsSession) { cid = s.cid })
		if cid == "" {
			return errString("no session")
		}
		return nil
	})
	call := func(method string, args map[string]any) map[string]any {
		t.Helper()
		req, _ := ts.Encode(map[string]any{"id": "1", "method": method, "args": args})
		if err := r.cmd.Send(nil, req); err != nil {
			t.Fatal(err)
		}
		msg := recvOne(t, r.cmd, 5*time.Second)
		v, err := ts.Decode(msg[len(msg)-1])
		if err != nil {
			t.Fatal(err)
		}
		return v.(map[string]any)
	}
	if m := call("refresh", map[string]any{"cid": cid}); m["success"] != true {
		t.Fatalf("refresh %v", m)
	}
	if m := call("refresh", map[string]any{"cid": "nope"}); m["success"] != false || string(m["condition"].([]byte)) != "item-not-found" {
		t.Fatalf("refresh unknown %v", m)
	}
	m := call("conncheck", map[string]any{"ids": []any{cid, "nope"}})
	if l, ok := m["value"].([]any); !ok || len(l) != 1 || string(l[0].([]byte)) != cid {
		t.Fatalf("conncheck %v", m)
	}
}
