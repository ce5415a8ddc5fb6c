package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/internal/testwait"
)

// At a sustained rate — 1,000 messages of 1 KB a second, published in POSTs
// of 50 — every stream subscriber that reads as fast as it is sent gets
// every message, in order. Behind our connection manager and behind
// condure (whose credits the handler must live with).
func TestSustainedRateStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	forEachStack(t, func(t *testing.T, tr tiers) {
		runRate(t, tr, 20, 3000, 0, false)
	}, allOurs, realEdgesOurs)
}

// Subscribers that read a little slower than they are sent (95 % of the
// rate, as a client on a slow link or a busy machine does) fall behind
// while the publisher goes on, by less than stream_max_queue_size, and
// catch up afterwards: every message, in order, none of them ended.
func TestSlightlySlowReadersGetEverything(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	forEachStack(t, func(t *testing.T, tr tiers) {
		runRate(t, tr, 20, 3000, 1000*rateSize*95/100, false)
	}, allOurs, realEdgesOurs)
}

// A subscriber that stops reading under the same load has its response
// ended cleanly once it is stream_max_queue_size behind: the messages it
// got are the first ones, whole and in order, then the end of the body —
// never a gap — and the subscribers that read get every message, not held
// back by it. Our connection manager only: condure 1.9.1 stops returning
// credits to every connection of the stalled one's worker thread once its
// socket is full (Pushpin 1.36 then gives all of them gaps), which no
// handler can make up for.
func TestStalledStreamEnded(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	forEachStack(t, func(t *testing.T, tr tiers) {
		// 7 MB to each: the stalled client's kernel buffers take a few MB
		// (the server's send buffer grows, up to tcp_wmem's 4 MB by
		// default), then its queue reaches the default bound.
		runRate(t, tr, 20, 7000, 0, true)
	}, allOurs)
}

// runRate holds subs subscribers on one channel, reading at most readBPS
// bytes a second (0: as fast as they can), and, if stall, one more that
// stops reading after its first probe; it publishes msgs messages of
// rateSize bytes at 1,000 a second in POSTs of 50, and checks that each
// reader gets all of them in order and the stalled one a clean prefix.
func runRate(t *testing.T, tr tiers, subs, msgs, readBPS int, stall bool) {
	const batch, size = 50, rateSize
	const limit = 1 << 20 // stream_max_queue_size's default
	be := newGripBackend(t)
	s := tr.start(t, fmt.Sprintf("* localhost:%d", be.port()))
	s.waitReady(t, "/plain")
	openStreamExpect(t, s.Client, s.url("/stream?ch=probe"), "stream open\n")
	addr := fmt.Sprintf("127.0.0.1:%d", s.HTTPPort)

	var probed, complete atomic.Int64
	errs := make(chan error, subs)
	for i := 0; i < subs; i++ {
		r := openRawStream(t, addr, "/stream?ch=rate", 0, readBPS)
		go func() {
			errs <- readRate(r, msgs, &probed)
			complete.Add(1)
		}()
	}
	// The stalled client: a small receive buffer, so the kernel holds
	// less for it; it reads up to its first probe, then stops.
	var stalled *rawStream
	stalledProbed := make(chan error, 1)
	if stall {
		stalled = openRawStream(t, addr, "/stream?ch=rate", 4096, 0)
		go func() { stalledProbed <- readUntilProbe(stalled) }()
	} else {
		stalledProbed <- nil
	}
	// Subscriptions register after the hold: probe (every 200 ms at most)
	// until every subscriber has seen one.
	var lastProbe time.Time
	testwait.For(t, 30*time.Second, func() error {
		if probed.Load() == int64(subs) && len(stalledProbed) == 1 {
			return nil
		}
		if time.Since(lastProbe) >= 200*time.Millisecond {
			s.publish(t, `{"items":[{"channel":"rate","formats":{"http-stream":{"content":"probe\n"}}}]}`)
			lastProbe = time.Now()
		}
		return fmt.Errorf("%d of %d subscribers probed", probed.Load(), subs)
	})
	if err := <-stalledProbed; err != nil {
		t.Fatalf("stalled client: %v", err)
	}

	tick := time.NewTicker(time.Second * batch / 1000)
	defer tick.Stop()
	for seq := 0; seq < msgs; seq += batch {
		<-tick.C
		var b strings.Builder
		b.WriteString(`{"items":[`)
		for i := seq; i < seq+batch; i++ {
			if i > seq {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"channel":"rate","formats":{"http-stream":{"content":%q}}}`, rateMessage(i, size))
		}
		b.WriteString(`]}`)
		s.publish(t, b.String())
	}

	deadline := time.After(60 * time.Second)
	for i := 0; i < subs; i++ {
		select {
		case err := <-errs:
			if err != nil {
				t.Errorf("subscriber: %v", err)
			}
		case <-deadline:
			t.Fatalf("only %d of %d subscribers got all %d messages", complete.Load(), subs, msgs)
		}
	}
	if !stall {
		return
	}
	// The stalled client now reads what it was sent: a run of whole
	// messages from the first, then the end of the response.
	_ = stalled.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, err := readInOrder(stalled.br, msgs)
	switch {
	case err != nil:
		t.Fatalf("stalled client, after %d messages: %v", got, err)
	case got == msgs:
		t.Fatalf("stalled client got all %d messages: the bound was never reached, the test proves nothing", msgs)
	case got*size < limit/2:
		t.Fatalf("stalled client ended after %d messages: before its bound of %d bytes", got, limit)
	}
	t.Logf("stalled client: %d messages, then its response ended", got)
}

// rateSize is the size of TestSustainedRateStreams's messages.
const rateSize = 1024

// rateMessage is message seq, size bytes with its newline.
func rateMessage(seq, size int) string {
	head := fmt.Sprintf("msg %06d ", seq)
	return head + strings.Repeat("x", size-len(head)-1) + "\n"
}

// rawStream is a held stream response read through its dechunked body.
type rawStream struct {
	c  net.Conn
	br *bufio.Reader
}

// openRawStream GETs path on a connection of its own (rcvbuf: SO_RCVBUF,
// 0 for the default) and reads the response head; with readBPS > 0 it
// reads no faster than that many bytes a second.
func openRawStream(t *testing.T, addr, path string, rcvbuf, readBPS int) *rawStream {
	t.Helper()
	d := net.Dialer{}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			return errors.Join(err, serr)
		}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	if err := req.Write(c); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	var rd io.Reader = c
	if readBPS > 0 {
		rd = &throttledReader{r: c, rate: readBPS, start: time.Now()}
	}
	resp, err := http.ReadResponse(bufio.NewReader(rd), req)
	if err != nil {
		t.Fatalf("stream %s: %v", path, err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("stream %s: status %d", path, resp.StatusCode)
	}
	_ = c.SetReadDeadline(time.Time{})
	return &rawStream{c: c, br: bufio.NewReaderSize(resp.Body, 64<<10)}
}

// throttledReader reads from r no faster than rate bytes a second on
// average since start: a client on a slow link. Reading slowly is the
// thing tested, so it waits for time.
type throttledReader struct {
	r     io.Reader
	rate  int
	start time.Time
	total int
}

func (t *throttledReader) Read(p []byte) (int, error) {
	p = p[:min(len(p), 4096)]
	n, err := t.r.Read(p)
	t.total += n
	due := t.start.Add(time.Duration(float64(t.total) / float64(t.rate) * float64(time.Second)))
	if wait := time.Until(due); wait > 0 {
		time.Sleep(wait)
	}
	return n, err
}

// readUntilProbe reads the initial body and up to the first probe.
func readUntilProbe(r *rawStream) error {
	for {
		l, err := r.br.ReadString('\n')
		if err != nil {
			return err
		}
		switch l {
		case "stream open\n":
		case "probe\n":
			return nil
		default:
			return fmt.Errorf("unexpected line %q before the first probe", l)
		}
	}
}

// readRate reads a subscriber's stream: the initial body, probes (the
// first one counted in probed), then msgs numbered messages in order.
func readRate(r *rawStream, msgs int, probed *atomic.Int64) error {
	_ = r.c.SetReadDeadline(time.Now().Add(120 * time.Second))
	if err := readUntilProbe(r); err != nil {
		return err
	}
	probed.Add(1)
	got, err := readInOrder(r.br, msgs)
	if err != nil {
		return fmt.Errorf("after %d of %d messages: %w", got, msgs, err)
	}
	if got < msgs {
		return fmt.Errorf("stream ended after %d of %d messages", got, msgs)
	}
	return nil
}

// readInOrder reads numbered messages, skipping probes, until msgs have
// come or the body ends cleanly; any gap, reordering or truncation (the
// body ending inside a message, or not cleanly) is an error.
func readInOrder(br *bufio.Reader, msgs int) (int, error) {
	next := 0
	for next < msgs {
		l, err := br.ReadString('\n')
		if err == io.EOF && l == "" {
			return next, nil // the response ended, between messages
		}
		if err != nil {
			return next, err
		}
		if l == "probe\n" {
			continue
		}
		var seq int
		if _, err := fmt.Sscanf(l, "msg %d ", &seq); err != nil || len(l) != rateSize {
			return next, fmt.Errorf("bad line (%d bytes) %.40q", len(l), l)
		}
		if seq != next {
			return next, fmt.Errorf("got message %d, want %d", seq, next)
		}
		next++
	}
	return next, nil
}
