package connmgr

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/pushpin-go/pushpin/connmgr/internal/http1"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// BenchmarkDeliver publishes one data packet to N held streams (real
// loopback TCP, clients in a child process) and waits until every client
// has read it: one op is one message reaching all N subscribers.
// "list" sends one packet with a list-form id (ext.multi-data), "single"
// one packet per session, as Pushpin's handler does toward condure.
func BenchmarkDeliver(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		for _, mode := range []string{"list", "single"} {
			b.Run(fmt.Sprintf("%s_%d", mode, n), func(b *testing.B) { benchDeliver(b, n, mode == "list") })
		}
	}
}

func benchDeliver(b *testing.B, n int, list bool) {
	base, addr := startServer(b, func(c *Config) { c.MaxConn = n + 10 })
	f := newFakeServer(b, base, "fakehandler", true)
	body := []byte(strings.Repeat("x", 100) + "\n")
	headWire := "HTTP/1.1 200 OK\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n"
	msgWire := len(http1.AppendChunkHeader(nil, len(body))) + len(body) + 2

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("CONNMGR_BENCH_CLIENT=%s %d %d %d", addr, n, len(headWire), msgWire))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	must(b, err)
	must(b, cmd.Start())
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewReader(stdout)

	// Credits and keep-alives come back on the ROUTER: drain them so the
	// connection manager never blocks on it. The drain goroutine owns the
	// ROUTER from here on.
	ctx, cancel := context.WithCancel(context.Background())
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for ctx.Err() == nil {
			_, _ = f.router.Recv()
		}
	}()
	b.Cleanup(func() { cancel(); <-drained })

	ids := make([]zhttp.IDSeq, 0, n)
	for i := 0; i < n; i++ {
		p := f.first()
		ids = append(ids, zhttp.IDSeq{ID: p.ID, Seq: 1})
		f.send(&zhttp.Packet{ID: p.ID, Seq: 0, Ext: zhttp.Ext{Multi: true}, Code: 200, HasCode: true, Reason: "OK", HasHeaders: true, More: true})
	}
	expectLine(b, lines, "ready")
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cpuTime()
	defer func() { b.ReportMetric(float64(cpuTime()-c0)/1e3/float64(b.N), "cpu-µs/op") }()
	seq := int64(1)
	for b.Loop() {
		if list {
			for i := range ids {
				ids[i].Seq = seq
			}
			f.send(&zhttp.Packet{IDs: ids, Ext: zhttp.Ext{Multi: true}, Body: body, More: true})
		} else {
			for _, x := range ids {
				f.send(&zhttp.Packet{ID: x.ID, Seq: seq, Ext: zhttp.Ext{Multi: true}, Body: body, More: true})
			}
		}
		seq++
		expectLine(b, lines, "msg")
	}
}

func expectLine(b *testing.B, r *bufio.Reader, want string) {
	b.Helper()
	line, err := r.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != want {
		b.Fatalf("bench client: got %q (%v), want %q", line, err, want)
	}
}
