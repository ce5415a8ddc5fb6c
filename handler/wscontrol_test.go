package handler

// WebSocket sessions through the real handler's sockets: the test plays
// the proxy with real ZeroMQ sockets (PUSH/PULL of ws-control, ROUTER of
// its command socket) and publishes on the command socket.

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/internal/testwait"
	ts "github.com/pushpin-go/pushpin/proto/tnetstring"
	"github.com/pushpin-go/pushpin/proto/wscontrol"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

// wsProxy is the proxy's end of ws-control: it binds what the handler
// connects to.
type wsProxy struct {
	push *zmq.Socket // → handler (proxy_ws_control_in_spec)
	pull *zmq.Socket // ← handler (proxy_ws_control_out_spec)
	got  []wscontrol.Item
}

// wsHandler starts a handler with ws-control, command and proxy command
// sockets under a temp dir, and the proxy's ws-control end.
func wsHandler(t *testing.T) (*configs.Config, *wsProxy) {
	t.Helper()
	dir := t.TempDir()
	cfg := handlerCfg(dir)
	ipc := func(name string) []string { return []string{"ipc://" + filepath.Join(dir, name)} }
	hc := &cfg.Handler
	hc.ProxyWSControlInSpec, hc.ProxyWSControlOutSpec = ipc("ws-out"), ipc("ws-in")
	hc.CommandSpec, hc.ProxyCommandSpec = ipc("command"), ipc("proxy-command")
	p := &wsProxy{}
	var err error
	if p.push, err = zmq.New(zmq.Push, zmq.Options{SndHWM: 200000}); err != nil {
		t.Fatal(err)
	}
	if p.pull, err = zmq.New(zmq.Pull, zmq.Options{RcvHWM: 200000}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.push.Close(); p.pull.Close() })
	if err := p.push.Bind(hc.ProxyWSControlInSpec[0]); err != nil {
		t.Fatal(err)
	}
	if err := p.pull.Bind(hc.ProxyWSControlOutSpec[0]); err != nil {
		t.Fatal(err)
	}
	startHandler(t, cfg, zerolog.Nop())
	return cfg, p
}

func (p *wsProxy) send(t *testing.T, items ...wscontrol.Item) {
	t.Helper()
	msg := wscontrol.Append(nil, items)
	testwait.For(t, 5*time.Second, func() error { return p.push.Send(msg) })
}

// next returns the next item from the handler, failing after 5 s.
func (p *wsProxy) next(t *testing.T) wscontrol.Item {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(p.got) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no ws-control item from the handler within 5 s")
		}
		msg, err := p.pull.Recv()
		if err != nil {
			continue
		}
		items, err := wscontrol.Parse(msg[0])
		if err != nil {
			t.Fatalf("bad packet from the handler: %v", err)
		}
		p.got = items
	}
	it := p.got[0]
	p.got = p.got[1:]
	return it
}

// expect returns the next item, which must be of type typ for cid.
func (p *wsProxy) expect(t *testing.T, cid string, typ wscontrol.Type) wscontrol.Item {
	t.Helper()
	it := p.next(t)
	if it.CID != cid || it.Type != typ {
		t.Fatalf("got %s for %q (%+v), want %s for %q", it.Type, it.CID, it, typ, cid)
	}
	return it
}

// quiet checks that nothing comes from the handler for d.
func (p *wsProxy) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	if len(p.got) > 0 {
		t.Fatalf("unexpected item %+v", p.got[0])
	}
	for end := time.Now().Add(d); time.Now().Before(end); {
		if msg, err := p.pull.Recv(); err == nil {
			t.Fatalf("unexpected packet %q", msg[0])
		}
	}
}

// control sends a grip item with a req-id and waits for its ack, so what
// it does is done when control returns.
func (p *wsProxy) control(t *testing.T, cid, reqID, msg string) {
	t.Helper()
	p.send(t, gripItem(cid, reqID, msg))
	if ack := p.expect(t, cid, wscontrol.Ack); ack.ReqID != reqID {
		t.Fatalf("ack of %q for %q", ack.ReqID, reqID)
	}
}

func wsPublishCmd(t *testing.T, cfg *configs.Config, format map[string]any) {
	t.Helper()
	m := callCommand(t, cfg.Handler.CommandSpec[0], map[string]any{"method": "publish", "args": map[string]any{
		"items": []any{map[string]any{"channel": format["channel"], "formats": map[string]any{"ws-message": format["ws-message"]}}}}})
	if m["success"] != true {
		t.Fatalf("publish: %v", m)
	}
}

// The life of a session from the proxy's side: here, a subscribe control
// message (acked), published text, binary and close reach it as send and
// close items (no queue, as Pushpin), unsubscribe stops them, a malformed
// control message is acked and ignored, gone ends it, and an item for an
// unknown session is answered with cancel.
func TestWSControlSession(t *testing.T) {
	t.Parallel()
	cfg, p := wsHandler(t)
	p.send(t, here("c1", "r-", false))
	p.control(t, "c1", "1", `{"type":"subscribe","channel":"x"}`)
	wsPublishCmd(t, cfg, map[string]any{"channel": "r-x", "ws-message": map[string]any{"content": "hello"}})
	if it := p.expect(t, "c1", wscontrol.Send); it.ContentType != "text" || string(it.Message) != "hello" || it.Queue || it.ReqID != "" {
		t.Fatalf("text send %+v", it)
	}
	wsPublishCmd(t, cfg, map[string]any{"channel": "r-x", "ws-message": map[string]any{"content-bin": []byte{0, 1, 2}}})
	if it := p.expect(t, "c1", wscontrol.Send); it.ContentType != "binary" || string(it.Message) != "\x00\x01\x02" {
		t.Fatalf("binary send %+v", it)
	}
	// Malformed and unknown control messages: acked, ignored, the session stays.
	p.control(t, "c1", "2", `{"type":`)
	p.control(t, "c1", "3", `{"type":"no-such-thing"}`)
	p.control(t, "c1", "4", `{"type":"session","id":"s1"}`)
	p.control(t, "c1", "5", `{"type":"detach"}`)
	p.expect(t, "c1", wscontrol.Detach)
	wsPublishCmd(t, cfg, map[string]any{"channel": "r-x", "ws-message": map[string]any{"action": "close", "code": 4005, "reason": "bye"}})
	if it := p.expect(t, "c1", wscontrol.Close); it.Code != 4005 || it.Reason != "bye" {
		t.Fatalf("close %+v", it)
	}
	p.control(t, "c1", "6", `{"type":"unsubscribe","channel":"x"}`)
	wsPublishCmd(t, cfg, map[string]any{"channel": "r-x", "ws-message": map[string]any{"content": "nobody"}})
	p.send(t, wscontrol.NewItem("c1", wscontrol.Gone), wscontrol.NewItem("c1", wscontrol.KeepAlive))
	p.expect(t, "c1", wscontrol.Cancel) // the keep-alive after gone: unknown now
	p.quiet(t, 300*time.Millisecond)
}

// keep-alive control message: keep-alive-setup to the proxy, and on
// need-keep-alive a send of the configured message; send-delayed arrives
// after its timeout, queued and with a req-id.
func TestWSControlKeepAliveAndDelayed(t *testing.T) {
	t.Parallel()
	_, p := wsHandler(t)
	p.send(t, here("c1", "", false))
	p.control(t, "c1", "1", `{"type":"keep-alive","content":"ka","timeout":20,"mode":"interval"}`)
	if it := p.expect(t, "c1", wscontrol.KeepAliveSetup); it.KeepAliveMode != "interval" || it.Timeout != 20 {
		t.Fatalf("keep-alive-setup %+v", it)
	}
	p.send(t, wscontrol.NewItem("c1", wscontrol.NeedKeepAlive))
	if it := p.expect(t, "c1", wscontrol.Send); it.ContentType != "text" || string(it.Message) != "ka" {
		t.Fatalf("keep-alive send %+v", it)
	}
	p.control(t, "c1", "2", `{"type":"keep-alive"}`)
	if it := p.expect(t, "c1", wscontrol.KeepAliveSetup); it.Timeout != -1 || it.KeepAliveMode != "" {
		t.Fatalf("keep-alive disabled: %+v", it)
	}
	start := time.Now()
	p.control(t, "c1", "3", `{"type":"send-delayed","content-bin":"AAE=","message-type":"binary","timeout":1}`)
	it := p.expect(t, "c1", wscontrol.Send)
	if time.Since(start) < 900*time.Millisecond || it.ContentType != "binary" || string(it.Message) != "\x00\x01" || !it.Queue || it.ReqID == "" {
		t.Fatalf("delayed send after %v: %+v", time.Since(start), it)
	}
	ack := wscontrol.NewItem("c1", wscontrol.Ack)
	ack.ReqID = it.ReqID
	p.send(t, ack)
	// A second send-delayed flushes the first at once.
	p.control(t, "c1", "4", `{"type":"send-delayed","content":"one","timeout":60}`)
	// The flush goes out as it happens, before the ack of the item that
	// caused it (as Pushpin).
	p.send(t, gripItem("c1", "5", `{"type":"send-delayed","content":"two","timeout":60}`))
	if it := p.expect(t, "c1", wscontrol.Send); string(it.Message) != "one" {
		t.Fatalf("replaced delayed message: %+v", it)
	}
	p.expect(t, "c1", wscontrol.Ack)
	p.send(t, gripItem("c1", "6", `{"type":"flush-delayed"}`))
	if it := p.expect(t, "c1", wscontrol.Send); string(it.Message) != "two" {
		t.Fatalf("flushed delayed message: %+v", it)
	}
	p.expect(t, "c1", wscontrol.Ack)
}

// The proxy's command end: a ROUTER bound at proxy_command_spec.
func proxyCommandEnd(t *testing.T, cfg *configs.Config) *zmq.Socket {
	t.Helper()
	r, err := zmq.New(zmq.Router, zmq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Bind(cfg.Handler.ProxyCommandSpec[0]); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// serveRefresh answers n zrpc calls on r: ok for cids in known, else
// item-not-found; it returns the cids asked for, in order.
func serveRefresh(r *zmq.Socket, n int, known map[string]bool) ([]string, error) {
	var asked []string
	for deadline := time.Now().Add(10 * time.Second); len(asked) < n; {
		if time.Now().After(deadline) {
			return asked, errors.New("no refresh call within 10 s")
		}
		msg, err := r.Recv()
		if err != nil {
			continue
		}
		v, err := ts.Decode(msg[len(msg)-1])
		if err != nil {
			return asked, err
		}
		m := v.(map[string]any)
		args, _ := m["args"].(map[string]any)
		if string(asBytes(m["method"])) != "refresh" || args == nil {
			return asked, fmt.Errorf("call %v", m)
		}
		cid := string(asBytes(args["cid"]))
		asked = append(asked, cid)
		resp := map[string]any{"id": m["id"], "success": known[cid], "value": nil}
		if !known[cid] {
			resp["condition"] = "item-not-found"
		}
		b, _ := ts.Encode(resp)
		if err := r.Send(append(append([][]byte{}, msg[:len(msg)-1]...), b)...); err != nil {
			return asked, err
		}
	}
	return asked, nil
}

// refresh on the command socket: a cid is asked of the proxy (its answer
// is the command's), a channel asks for each of its sessions and succeeds
// past unknown ones.
func TestWSRefreshCommand(t *testing.T) {
	t.Parallel()
	cfg, p := wsHandler(t)
	r := proxyCommandEnd(t, cfg)
	for _, cid := range []string{"a", "b"} {
		p.send(t, here(cid, "", false))
		p.control(t, cid, "1", `{"type":"subscribe","channel":"room"}`)
	}
	type res struct {
		asked []string
		err   error
	}
	serve := func(n int, known map[string]bool) chan res {
		ch := make(chan res, 1)
		go func() { a, err := serveRefresh(r, n, known); ch <- res{a, err} }()
		return ch
	}
	done := serve(1, map[string]bool{"a": true})
	m := callCommand(t, cfg.Handler.CommandSpec[0], map[string]any{"id": "1", "method": "refresh", "args": map[string]any{"cid": "a"}})
	if got := <-done; got.err != nil || len(got.asked) != 1 || got.asked[0] != "a" {
		t.Fatalf("proxy saw %v, %v", got.asked, got.err)
	}
	if m["success"] != true || string(asBytes(m["id"])) != "1" {
		t.Fatalf("refresh a: %v", m)
	}
	done = serve(1, nil)
	m = callCommand(t, cfg.Handler.CommandSpec[0], map[string]any{"method": "refresh", "args": map[string]any{"cid": "zz"}})
	<-done
	if m["success"] != false || string(asBytes(m["condition"])) != "item-not-found" {
		t.Fatalf("refresh of an unknown cid: %v", m)
	}
	done = serve(2, map[string]bool{"a": true})
	m = callCommand(t, cfg.Handler.CommandSpec[0], map[string]any{"method": "refresh", "args": map[string]any{"channel": "room"}})
	if got := <-done; got.err != nil || len(got.asked) != 2 {
		t.Fatalf("channel refresh: proxy saw %v, %v", got.asked, got.err)
	}
	if m["success"] != true {
		t.Fatalf("refresh of a channel: %v", m)
	}
	m = callCommand(t, cfg.Handler.CommandSpec[0], map[string]any{"method": "refresh", "args": map[string]any{}})
	if m["success"] != false || string(asBytes(m["condition"])) != "bad-request" {
		t.Fatalf("refresh without cid or channel: %v", m)
	}
	// Meanwhile publishes on the same command socket are answered.
	wsPublishCmd(t, cfg, map[string]any{"channel": "room", "ws-message": map[string]any{"content": "x"}})
}
