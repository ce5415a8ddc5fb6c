package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"path/filepath"
	"strconv"
	"time"

	"github.com/zeromq/goczmq"
)

const (
	proxyID   = "fakeproxy"
	handlerID = "fakehandler"
	recvWait  = 5 * time.Second
)

// condureRig is the fake proxy (and, after a handoff, fake handler) in front
// of a real condure.
type condureRig struct {
	ctx       context.Context
	pull      *goczmq.Sock // condure-out: first packets
	rtr, rtr2 *goczmq.Sock // condure-out-stream as proxyID / handlerID
	pub       *goczmq.Sock // condure-in
	rec       *recorder
	addr      string
}

func captureCondure(ctx context.Context, tmp, out string, keepAlive bool) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	base := "ipc://" + filepath.Join(tmp, "condure")
	p, err := startProc(tmp, "condure", "--listen=127.0.0.1:"+strconv.Itoa(port)+",stream",
		"--zclient-stream="+base, "--id=condure", "--buffer-size=8192", "--log-level=3")
	if err != nil {
		return err
	}
	defer p.stop()
	r := &condureRig{ctx: ctx, rec: newRecorder(out, "condure"), addr: "127.0.0.1:" + strconv.Itoa(port)}
	if err := waitFor(ctx, p, 5*time.Second, "condure listening", func() bool {
		return fileExists(filepath.Join(tmp, "condure-in"))() && tcpReady(r.addr)()
	}); err != nil {
		return err
	}
	if r.pull, err = newSock(goczmq.Pull, base+"-out", ""); err != nil {
		return err
	}
	defer r.pull.Destroy()
	if r.rtr, err = newSock(goczmq.Router, base+"-out-stream", proxyID); err != nil {
		return err
	}
	defer r.rtr.Destroy()
	if r.rtr2, err = newSock(goczmq.Router, base+"-out-stream", handlerID); err != nil {
		return err
	}
	defer r.rtr2.Destroy()
	if r.pub, err = newSock(goczmq.Pub, base+"-in", ""); err != nil {
		return err
	}
	defer r.pub.Destroy()
	// Subscriptions travel asynchronously after connect; nothing tells a PUB
	// when they arrived, so give them a moment before the first publish.
	time.Sleep(300 * time.Millisecond)

	steps := []struct {
		name string
		fn   func() error
	}{
		{"get", r.get},
		{"post", r.post},
		{"chunked", r.chunked},
		{"http10", r.http10},
		{"stream", r.stream},
		{"handoff", r.handoff},
		{"cancel", r.cancel},
		{"badseq", r.badSeq},
		{"ws", r.ws},
	}
	for _, s := range steps {
		log.Printf("--- condure/%s", s.name)
		if err := s.fn(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	if keepAlive {
		log.Printf("--- condure/keepalive")
		if err := r.keepAlive(); err != nil {
			return fmt.Errorf("keepalive: %w", err)
		}
	}
	return nil
}

func (r *condureRig) request(tc string) (packet, error) {
	msg, err := recvMsg(r.pull, recvWait)
	if err != nil {
		return packet{}, fmt.Errorf("waiting for request: %w", err)
	}
	if len(msg) != 1 {
		return packet{}, fmt.Errorf("request has %d frames, want 1", len(msg))
	}
	p, err := decodePacket(msg[0], false)
	if err != nil {
		return p, err
	}
	return p, r.rec.save(tc, "recv", p)
}

// streamed reads the next packet condure routes to s; tc "" discards it.
func (r *condureRig) streamed(tc string, s *goczmq.Sock, d time.Duration) (packet, error) {
	msg, err := recvMsg(s, d)
	if err != nil {
		return packet{}, err
	}
	if len(msg) != 3 || len(msg[1]) != 0 {
		return packet{}, fmt.Errorf("routed message has %d frames, want [id, \"\", payload]", len(msg))
	}
	p, err := decodePacket(msg[2], false)
	if err != nil {
		return p, err
	}
	if tc == "" {
		return p, nil
	}
	return p, r.rec.save(tc, "recv", p)
}

// expect reads routed packets until one of the wanted type arrives,
// recording every packet on the way.
func (r *condureRig) expect(tc string, s *goczmq.Sock, kind string) (packet, error) {
	for {
		p, err := r.streamed(tc, s, recvWait)
		if err != nil {
			return p, fmt.Errorf("waiting for %s: %w", kind, err)
		}
		if p.kind() == kind {
			return p, nil
		}
	}
}

// drain records whatever condure sends within d.
func (r *condureRig) drain(tc string, s *goczmq.Sock, d time.Duration) error {
	for {
		_, err := r.streamed(tc, s, d)
		if errors.Is(err, errTimeout) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (r *condureRig) send(tc string, fields od) error {
	p, err := decodePacket(zhttpFrame("condure", fields), true)
	if err != nil {
		return err
	}
	if err := sendMsg(r.pub, p.raw); err != nil {
		return err
	}
	return r.rec.save(tc, "sent", p)
}

func hdr(kv ...string) []any {
	var l []any
	for i := 0; i+1 < len(kv); i += 2 {
		l = append(l, []any{kv[i], kv[i+1]})
	}
	return l
}

var multi = map[string]any{"multi": true}

func ack(from, id string, seq int) od {
	return od{"from", from, "id", id, "seq", seq, "type", "keep-alive", "ext", multi}
}

func creditPkt(from, id string, seq, credits int) od {
	return od{"from", from, "id", id, "seq", seq, "type", "credit", "credits", credits, "ext", multi}
}

func response(from, id string, seq int, body string, more bool) od {
	d := od{"from", from, "id", id, "seq", seq, "code", 200, "reason", "OK",
		"headers", hdr("Content-Type", "text/plain", "X-Capture", "1"), "body", body}
	if more {
		d = append(d, "more", true)
	}
	return d
}

func bodyPkt(from, id string, seq int, body string, more bool) od {
	d := od{"from", from, "id", id, "seq", seq, "body", body}
	if more {
		d = append(d, "more", true)
	}
	return d
}

func (r *condureRig) curlGet(path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: " + r.addr + "\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n"
}

func transcript(tc, raw string) { log.Printf("client %s received:\n%s", tc, raw) }

// get: plain GET answered with ack + complete response, then a second
// request on the same keep-alive connection answered without an ack.
func (r *condureRig) get() error {
	c, err := dialClient(r.addr)
	if err != nil {
		return err
	}
	defer c.close()
	if err := c.write(r.curlGet("/hello?x=1")); err != nil {
		return err
	}
	req, err := r.request("get")
	if err != nil {
		return err
	}
	id := req.str("id")
	if err := r.send("get", ack(proxyID, id, 0)); err != nil {
		return err
	}
	if err := r.send("get", response(proxyID, id, 1, "hello\n", false)); err != nil {
		return err
	}
	raw, err := c.readResponse("GET")
	transcript("get", raw)
	if err != nil {
		return err
	}
	if err := r.drain("get", r.rtr, 300*time.Millisecond); err != nil {
		return err
	}
	if err := c.write(r.curlGet("/second")); err != nil {
		return err
	}
	req, err = r.request("get-second")
	if err != nil {
		return err
	}
	if err := r.send("get-second", response(proxyID, req.str("id"), 0, "second\n", false)); err != nil {
		return err
	}
	raw, err = c.readResponse("GET")
	transcript("get-second", raw)
	return err
}

// answerBody acks a request whose body is still coming, then collects the
// body packets until the last one.
func (r *condureRig) answerBody(tc string, req packet) error {
	id := req.str("id")
	seq := 0
	if !req.has("more") {
		return fmt.Errorf("request unexpectedly complete: %s", trunc(req.raw))
	}
	if err := r.send(tc, creditPkt(proxyID, id, seq, 200000)); err != nil {
		return err
	}
	seq++
	for {
		p, err := r.streamed(tc, r.rtr, recvWait)
		if err != nil {
			return fmt.Errorf("waiting for body: %w", err)
		}
		if p.kind() == "data" && !p.has("more") {
			break
		}
	}
	if err := r.send(tc, response(proxyID, id, seq, "ok\n", false)); err != nil {
		return err
	}
	return nil
}

func (r *condureRig) post() error {
	c, err := dialClient(r.addr)
	if err != nil {
		return err
	}
	defer c.close()
	if err := c.write("POST /submit HTTP/1.1\r\nHost: " + r.addr + "\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n" +
		"Content-Length: 11\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\nhello=world"); err != nil {
		return err
	}
	req, err := r.request("post")
	if err != nil {
		return err
	}
	if err := r.answerBody("post", req); err != nil {
		return err
	}
	raw, err := c.readResponse("POST")
	transcript("post", raw)
	return err
}

func (r *condureRig) chunked() error {
	c, err := dialClient(r.addr)
	if err != nil {
		return err
	}
	defer c.close()
	if err := c.write("POST /chunked HTTP/1.1\r\nHost: " + r.addr + "\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n" +
		"Transfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n5\r\nhello\r\n"); err != nil {
		return err
	}
	req, err := r.request("chunked")
	if err != nil {
		return err
	}
	// The rest of the body arrives later, after condure has seen credits.
	go func() {
		time.Sleep(200 * time.Millisecond)
		_ = c.write("6\r\n world\r\n0\r\n\r\n")
	}()
	if err := r.answerBody("chunked", req); err != nil {
		return err
	}
	raw, err := c.readResponse("POST")
	transcript("chunked", raw)
	return err
}

// http10: HTTP/1.0 request answered with a streamed (more) response.
func (r *condureRig) http10() error {
	c, err := dialClient(r.addr)
	if err != nil {
		return err
	}
	defer c.close()
	if err := c.write("GET /old HTTP/1.0\r\nHost: " + r.addr + "\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n"); err != nil {
		return err
	}
	req, err := r.request("http10")
	if err != nil {
		return err
	}
	id := req.str("id")
	if err := r.send("http10", response(proxyID, id, 0, "part1\n", true)); err != nil {
		return err
	}
	if _, err := r.expect("http10", r.rtr, "credit"); err != nil {
		return err
	}
	if err := r.send("http10", bodyPkt(proxyID, id, 1, "part2\n", false)); err != nil {
		return err
	}
	raw, err := c.readResponse("GET")
	transcript("http10", raw)
	if err != nil {
		return err
	}
	return r.drain("http10", r.rtr, 300*time.Millisecond)
}

// stream: ack, streamed response with credits, zero-length final packet.
func (r *condureRig) stream() error {
	c, err := dialClient(r.addr)
	if err != nil {
		return err
	}
	defer c.close()
	if err := c.write(r.curlGet("/stream")); err != nil {
		return err
	}
	req, err := r.request("stream")
	if err != nil {
		return err
	}
	id := req.str("id")
	if err := r.send("stream", ack(proxyID, id, 0)); err != nil {
		return err
	}
	if err := r.send("stream", response(proxyID, id, 1, "chunk1\n", true)); err != nil {
		return err
	}
	if _, err := r.expect("stream", r.rtr, "credit"); err != nil {
		return err
	}
	if err := r.send("stream", bodyPkt(proxyID, id, 2, "chunk2\n", true)); err != nil {
		return err
	}
	if _, err := r.expect("stream", r.rtr, "credit"); err != nil {
		return err
	}
	if err := r.send("stream", bodyPkt(proxyID, id, 3, "", false)); err != nil {
		return err
	}
	raw, err := c.readResponse("GET")
	transcript("stream", raw)
	if err != nil {
		return err
	}
	return r.drain("stream", r.rtr, 300*time.Millisecond)
}

// handoff: the proxy hands the session to a second identity, which then
// answers; condure must route its credits to that identity.
func (r *condureRig) handoff() error {
	c, err := dialClient(r.addr)
	if err != nil {
		return err
	}
	defer c.close()
	if err := c.write(r.curlGet("/handoff")); err != nil {
		return err
	}
	req, err := r.request("handoff")
	if err != nil {
		return err
	}
	id := req.str("id")
	if err := r.send("handoff", ack(proxyID, id, 0)); err != nil {
		return err
	}
	if err := r.send("handoff", od{"from", proxyID, "id", id, "seq", 1, "type", "handoff-start"}); err != nil {
		return err
	}
	if _, err := r.expect("handoff", r.rtr, "handoff-proceed"); err != nil {
		return err
	}
	if err := r.send("handoff", ack(handlerID, id, 2)); err != nil {
		return err
	}
	if err := r.send("handoff", response(handlerID, id, 3, "after handoff\n", true)); err != nil {
		return err
	}
	if _, err := r.expect("handoff", r.rtr2, "credit"); err != nil {
		return fmt.Errorf("credit to %s: %w", handlerID, err)
	}
	if err := r.send("handoff", bodyPkt(handlerID, id, 4, "", false)); err != nil {
		return err
	}
	raw, err := c.readResponse("GET")
	transcript("handoff", raw)
	return err
}

// cancel: the client goes away while the response is pending.
func (r *condureRig) cancel() error {
	c, err := dialClient(r.addr)
	if err != nil {
		return err
	}
	if err := c.write(r.curlGet("/cancel")); err != nil {
		c.close()
		return err
	}
	req, err := r.request("cancel")
	if err != nil {
		c.close()
		return err
	}
	if err := r.send("cancel", ack(proxyID, req.str("id"), 0)); err != nil {
		c.close()
		return err
	}
	time.Sleep(100 * time.Millisecond) // let the ack land before the disconnect
	c.close()
	_, err = r.expect("cancel", r.rtr, "cancel")
	return err
}

// badSeq: a packet with a seq gap; condure is expected to cancel.
func (r *condureRig) badSeq() error {
	c, err := dialClient(r.addr)
	if err != nil {
		return err
	}
	defer c.close()
	if err := c.write(r.curlGet("/badseq")); err != nil {
		return err
	}
	req, err := r.request("badseq")
	if err != nil {
		return err
	}
	id := req.str("id")
	if err := r.send("badseq", ack(proxyID, id, 0)); err != nil {
		return err
	}
	if err := r.send("badseq", response(proxyID, id, 5, "wrong seq\n", false)); err != nil {
		return err
	}
	if err := r.drain("badseq", r.rtr, time.Second); err != nil {
		return err
	}
	transcript("badseq", string(c.readFor(500*time.Millisecond)))
	return nil
}

func (r *condureRig) ws() error {
	c, err := dialClient(r.addr)
	if err != nil {
		return err
	}
	defer c.close()
	if err := c.write("GET /ws?x=1 HTTP/1.1\r\nHost: " + r.addr + "\r\nUser-Agent: Go-capture\r\n" +
		"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: chat\r\n\r\n"); err != nil {
		return err
	}
	req, err := r.request("ws")
	if err != nil {
		return err
	}
	id := req.str("id")
	if err := r.send("ws", od{"from", proxyID, "id", id, "seq", 0, "code", 101, "reason", "Switching Protocols",
		"headers", hdr("Sec-WebSocket-Protocol", "chat"), "credits", 1024, "ext", multi}); err != nil {
		return err
	}
	raw, err := c.readResponse("GET")
	transcript("ws", raw)
	if err != nil {
		return err
	}
	if err := c.write(string(wsFrame(0x1, []byte("cli-text")))); err != nil {
		return err
	}
	if _, err := r.expect("ws", r.rtr, "data"); err != nil {
		return err
	}
	if err := c.write(string(wsFrame(0x2, []byte{0x01, 0x02}))); err != nil {
		return err
	}
	if _, err := r.expect("ws", r.rtr, "data"); err != nil {
		return err
	}
	if err := c.write(string(wsFrame(0x9, []byte("pp")))); err != nil {
		return err
	}
	if _, err := r.expect("ws", r.rtr, "ping"); err != nil {
		return err
	}
	if err := r.send("ws", od{"from", proxyID, "id", id, "seq", 1, "content-type", "text", "body", "srv-text"}); err != nil {
		return err
	}
	if err := r.send("ws", od{"from", proxyID, "id", id, "seq", 2, "content-type", "binary", "body", "\x00\x01"}); err != nil {
		return err
	}
	if err := r.send("ws", od{"from", proxyID, "id", id, "seq", 3, "type", "close", "code", 4001, "body", "server closing"}); err != nil {
		return err
	}
	log.Printf("client ws frames: %q", c.readFor(500*time.Millisecond))
	closeFrame := wsFrame(0x8, append([]byte{0x0f, 0xa1}, "server closing"...))
	if err := c.write(string(closeFrame)); err != nil {
		return err
	}
	_, err = r.expect("ws", r.rtr, "close")
	if err != nil {
		return err
	}
	return r.drain("ws", r.rtr, 300*time.Millisecond)
}

// keepAlive holds four streaming sessions open (two per condure worker)
// until condure sends a batched keep-alive (list-form id), which it does
// roughly every 45 s.
func (r *condureRig) keepAlive() error {
	var ids []string
	for i := range 4 {
		c, err := dialClient(r.addr)
		if err != nil {
			return err
		}
		defer c.close()
		if err := c.write(r.curlGet("/ka" + strconv.Itoa(i))); err != nil {
			return err
		}
		req, err := r.request("keepalive")
		if err != nil {
			return err
		}
		id := req.str("id")
		ids = append(ids, id)
		if err := r.send("keepalive", response(proxyID, id, 0, "held\n", true)); err != nil {
			return err
		}
		if _, err := r.expect("keepalive", r.rtr, "credit"); err != nil {
			return err
		}
	}
	var batched bool
	deadline := time.Now().Add(55 * time.Second)
	for !batched && time.Now().Before(deadline) {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		p, err := r.streamed("keepalive", r.rtr, time.Second)
		if errors.Is(err, errTimeout) {
			continue
		}
		if err != nil {
			return err
		}
		_, batched = p.fields["id"].([]any)
	}
	for i, id := range ids {
		if err := r.send("keepalive", bodyPkt(proxyID, id, 1, "bye\n", false)); err != nil {
			return fmt.Errorf("closing session %d: %w", i, err)
		}
	}
	if !batched {
		return errors.New("no batched keep-alive from condure within 55 s")
	}
	return r.drain("keepalive", r.rtr, 500*time.Millisecond)
}
