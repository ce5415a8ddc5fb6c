package connmgr

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// dialStalled opens a held stream from a client with a small receive
// buffer that reads nothing yet; the server has sent the streaming head.
func dialStalled(t *testing.T, f *fakeServer, addr string) (rawClient, string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	must(t, err)
	must(t, unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4096))
	must(t, unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5}))
	var port int
	_, _ = fmt.Sscan(addr[strings.LastIndexByte(addr, ':')+1:], &port)
	must(t, retryEINTR(func() error { return unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}) }))
	c := rawClient(fd)
	_, err = rawWrite(c, "GET /stream HTTP/1.1\r\nHost: h\r\n\r\n")
	must(t, err)
	p := f.first()
	f.send(&zhttp.Packet{ID: p.ID, Seq: 0, Ext: zhttp.Ext{Multi: true}, Code: 200, HasCode: true, Reason: "OK", HasHeaders: true, More: true})
	return c, p.ID
}

// fillUntilStuck sends full credit windows (one 8192-byte packet each,
// from seq 1) and waits for their credits, until one is not credited: the
// client's socket is full and the session's whole window is in use. It
// returns the next seq and the body bytes sent.
func fillUntilStuck(t *testing.T, f *fakeServer, id string) (int64, int) {
	t.Helper()
	big := []byte(strings.Repeat("z", DefaultBufferSize))
	for seq := int64(1); seq < 2000; seq++ {
		f.send(&zhttp.Packet{ID: id, Seq: seq, Ext: zhttp.Ext{Multi: true}, Body: big, More: true})
		for {
			msg, err := recvWithin(f.router, 3*time.Second)
			if err != nil {
				return seq + 1, int(seq) * len(big)
			}
			q, err := zhttp.ParseMessage(msg[2])
			must(t, err)
			if q.Type == zhttp.KeepAlive {
				continue // condure sends them at will
			}
			if q.Type != zhttp.Credit || q.ID != id || q.Credits != int64(len(big)) {
				t.Fatalf("packet %+v", q)
			}
			break
		}
	}
	t.Fatal("the client socket never filled")
	return 0, 0
}

// A client that stops reading holds back the credits of what its socket
// did not take; once it reads, the rest is written in order and exactly
// those credits come back.
func TestSlowClientCreditsAfterFlush(t *testing.T) {
	t.Parallel()
	ours(t, "condure buffers a stalled client differently (observed: it keeps crediting far past what the socket takes); this pins our kept-output path")
	base, addr := startServer(t, nil)
	f := newFakeServer(t, base, "fakehandler", true)
	c, id := dialStalled(t, f, addr)
	defer c.close()
	seq, sent := fillUntilStuck(t, f, id)
	// Read everything: head, then every chunk in order.
	want := streamHead + strings.Repeat(fmt.Sprintf("%x\r\n%s\r\n", DefaultBufferSize, strings.Repeat("z", DefaultBufferSize)), sent/DefaultBufferSize)
	c.expect(t, want)
	q := f.laterData()
	check(t, "withheld credit", []any{q.Type, q.ID, q.Seq, q.Credits}, []any{zhttp.Credit, id, seq - 1, DefaultBufferSize})
	f.send(&zhttp.Packet{ID: id, Seq: seq, Body: []byte("end"), More: false})
	c.expect(t, "3\r\nend\r\n0\r\n\r\n")
}

// --stream-timeout: an idle keep-alive connection (and one that never
// finishes its head) is closed once the client has been silent that long;
// a held stream with nothing left to write is not.
func TestStreamTimeout(t *testing.T) {
	t.Parallel()
	base, addr := startServer(t, func(c *Config) { c.StreamTimeout, c.Sweep = 300*time.Millisecond, 20*time.Millisecond })
	f := newFakeServer(t, base, "fakeproxy", true)
	idle, ibr := dial(t, addr)
	_, _ = idle.Write([]byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n"))
	p := f.first()
	f.send(&zhttp.Packet{ID: p.ID, Seq: 0, Code: 200, HasCode: true, Reason: "OK", HasHeaders: true})
	readHead(t, ibr)
	partial, pbr := dial(t, addr)
	_, _ = partial.Write([]byte("GET / HTTP/1.1\r\nHo"))
	held, hbr := dial(t, addr)
	_, _ = held.Write([]byte("GET /stream HTTP/1.1\r\nHost: h\r\n\r\n"))
	p = f.first()
	f.send(&zhttp.Packet{ID: p.ID, Seq: 0, Code: 200, HasCode: true, Reason: "OK", HasHeaders: true, More: true})
	readHead(t, hbr)
	expectEOF(t, ibr)
	expectEOF(t, pbr)
	f.nothing(500 * time.Millisecond) // no cancel: the held stream lives on
	f.send(&zhttp.Packet{ID: p.ID, Seq: 1, Body: []byte("late\n")})
	check(t, "held stream", readN(t, hbr, 15), "5\r\nlate\n\r\n0\r\n\r\n")
}
