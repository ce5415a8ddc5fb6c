package connmgr

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushpin-go/pushpin/proto/zhttp"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

// The CPU benchmarks (cpu_bench_test.go) measure the connection manager
// alone: its clients and the fake zhttp servers live in a child process
// (the test binary re-run with CONNMGR_BENCH_LOAD="mode base addr conc"),
// so getrusage in the benchmark process counts connmgr work only. The
// child prints "ready" once its sockets are attached, then for each line
// "N" on stdin runs N operations over conc clients and prints "done".
//
// Modes: "get" is a keep-alive GET answered by the fake proxy with one
// complete response packet (a passthrough request); "held" opens a
// connection, the fake proxy answers with a streaming head and hands the
// session off to a fake handler (handoff-start, proceed, the handler's
// first packet), the client reads the head and closes (cancel to the
// handler), as a GRIP stream hold does behind Pushpin's proxy.
func loadMain(spec string) error {
	f := strings.Fields(spec)
	if len(f) != 4 {
		return fmt.Errorf("spec %q", spec)
	}
	mode, base, addr := f[0], f[1], f[2]
	conc, err := strconv.Atoi(f[3])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	stop, err := startLoadServers(ctx, mode, base)
	if err != nil {
		cancel()
		return err
	}
	defer func() { cancel(); stop() }()
	op := getOp
	if mode == "held" {
		op = heldOp
	}
	if _, err := os.Stdout.WriteString("ready\n"); err != nil {
		return err
	}
	in := bufio.NewScanner(os.Stdin)
	conns := make([]*loadConn, conc)
	for in.Scan() {
		n, err := strconv.ParseInt(in.Text(), 10, 64)
		if err != nil {
			return err
		}
		var left atomic.Int64
		left.Store(n)
		var wg sync.WaitGroup
		errs := make(chan error, conc)
		for i := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for left.Add(-1) >= 0 {
					if err := op(addr, &conns[i]); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		select {
		case err := <-errs:
			return err
		default:
		}
		if _, err := os.Stdout.WriteString("done\n"); err != nil {
			return err
		}
	}
	return in.Err()
}

type loadConn struct {
	c  net.Conn
	br *bufio.Reader
}

var (
	getReq  = []byte("GET /plain HTTP/1.1\r\nHost: bench\r\n\r\n")
	getBody = []byte("hello world, this is a small passthrough body\n")
)

// getOp sends one keep-alive GET on the client's connection (dialled on
// first use) and reads the whole response.
func getOp(addr string, lc **loadConn) error {
	if *lc == nil {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		*lc = &loadConn{c: c, br: bufio.NewReader(c)}
	}
	c := *lc
	if _, err := c.c.Write(getReq); err != nil {
		return err
	}
	length := -1
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("response head: %w", err)
		}
		if len(line) == 2 {
			break
		}
		if v, ok := strings.CutPrefix(strings.ToLower(string(line)), "content-length: "); ok {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if length != len(getBody) {
		return fmt.Errorf("content-length %d", length)
	}
	_, err := c.br.Discard(length)
	return err
}

// heldOp opens a stream, reads its head and closes.
func heldOp(addr string, _ **loadConn) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET /stream HTTP/1.1\r\nHost: bench\r\n\r\n")); err != nil {
		return err
	}
	buf := make([]byte, len(streamHead))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != streamHead {
		return fmt.Errorf("head %q: %w", buf, err)
	}
	return nil
}

// startLoadServers attaches the fake proxy (and, for held, the fake
// handler) and runs their loops until ctx ends.
func startLoadServers(ctx context.Context, mode, base string) (stop func(), err error) {
	var socks []*zmq.Socket
	open := func(t zmq.Type, o zmq.Options, spec string) *zmq.Socket {
		if err != nil {
			return nil
		}
		var s *zmq.Socket
		if s, err = zmq.New(t, o); err == nil {
			socks = append(socks, s)
			err = s.Connect(spec)
		}
		return s
	}
	pull := open(zmq.Pull, zmq.Options{}, base+"-out")
	prouter := open(zmq.Router, zmq.Options{Identity: "fakeproxy"}, base+"-out-stream")
	ppub := open(zmq.XPub, zmq.Options{SndHWM: 200000}, base+"-in")
	var hrouter, hpub *zmq.Socket
	if mode == "held" {
		hrouter = open(zmq.Router, zmq.Options{Identity: "fakehandler"}, base+"-out-stream")
		hpub = open(zmq.XPub, zmq.Options{SndHWM: 200000}, base+"-in")
	}
	var wg sync.WaitGroup
	stop = func() {
		wg.Wait()
		for _, s := range socks {
			s.Close()
		}
	}
	if err != nil {
		stop()
		return nil, err
	}
	for _, pub := range []*zmq.Socket{ppub, hpub} {
		if pub != nil {
			if err = awaitSubscription(pub); err != nil {
				stop()
				return nil, err
			}
		}
	}
	loop := func(s *zmq.Socket, fn func(p *zhttp.Packet)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				msg, err := s.Recv()
				if err != nil {
					continue
				}
				if p, err := zhttp.ParseMessage(msg[len(msg)-1]); err == nil {
					fn(p)
				}
			}
		}()
	}
	pubAs := func(pub *zmq.Socket, from string, p *zhttp.Packet) {
		p.From, p.HasSeq = from, true
		_ = pub.Send(p.AppendPub(nil, "condure"))
	}
	if mode != "held" {
		loop(pull, func(p *zhttp.Packet) {
			pubAs(ppub, "fakeproxy", &zhttp.Packet{ID: p.ID, Seq: 0, Ext: zhttp.Ext{Multi: true}, Code: 200, HasCode: true, Reason: "OK",
				Headers: zhttp.Headers{{Name: "Content-Type", Value: "text/plain"}}, HasHeaders: true, Body: getBody})
		})
		loop(prouter, func(*zhttp.Packet) {})
		return stop, nil
	}
	// The proxy goroutine owns PULL and the proxy's XPUB; the proxy's
	// ROUTER goroutine owns the handler's XPUB (it speaks once the proxy
	// saw handoff-proceed).
	loop(pull, func(p *zhttp.Packet) {
		pubAs(ppub, "fakeproxy", &zhttp.Packet{ID: p.ID, Seq: 0, Ext: zhttp.Ext{Multi: true}, Code: 200, HasCode: true, Reason: "OK",
			HasHeaders: true, More: true})
		pubAs(ppub, "fakeproxy", &zhttp.Packet{ID: p.ID, Seq: 1, Type: zhttp.HandoffStart})
	})
	loop(prouter, func(p *zhttp.Packet) {
		if p.Type == zhttp.HandoffProceed {
			pubAs(hpub, "fakehandler", &zhttp.Packet{ID: p.ID, Seq: 2, Type: zhttp.KeepAlive, Ext: zhttp.Ext{Multi: true}})
		}
	})
	loop(hrouter, func(*zhttp.Packet) {})
	return stop, nil
}

// awaitSubscription waits for the connection manager's SUB to subscribe.
func awaitSubscription(pub *zmq.Socket) error {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		msg, err := pub.Recv()
		if err == nil && len(msg[0]) > 0 && msg[0][0] == 1 {
			return nil
		}
		if err != nil && !errors.Is(err, zmq.ErrTimeout) {
			return err
		}
	}
	return errors.New("no subscription from the connection manager")
}
