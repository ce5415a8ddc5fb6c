//go:build !purego

package zmq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/internal/testwait"
)

func ipc(t *testing.T, name string) string {
	return "ipc://" + filepath.Join(t.TempDir(), name)
}

func mustNew(t *testing.T, typ Type, o Options) *Socket {
	t.Helper()
	s, err := New(typ, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func recvWithin(t *testing.T, s *Socket, d time.Duration) [][]byte {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		msg, err := s.Recv()
		if errors.Is(err, ErrTimeout) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	t.Fatal("nothing received")
	return nil
}

func TestPushPullMultipart(t *testing.T) {
	t.Parallel()
	ep := ipc(t, "pp")
	pull := mustNew(t, Pull, Options{})
	defer pull.Close()
	if err := pull.Bind(ep); err != nil {
		t.Fatal(err)
	}
	push := mustNew(t, Push, Options{})
	defer push.Close()
	if err := push.Connect(ep); err != nil {
		t.Fatal(err)
	}
	if err := push.Send([]byte("a"), []byte{}, []byte("ccc")); err != nil {
		t.Fatal(err)
	}
	msg := recvWithin(t, pull, 5*time.Second)
	if len(msg) != 3 || string(msg[0]) != "a" || len(msg[1]) != 0 || string(msg[2]) != "ccc" {
		t.Fatalf("got %q", msg)
	}
}

// The zhttp pattern: a server ROUTER with an identity, a client ROUTER that
// addresses it by that identity, with ROUTER_MANDATORY.
func TestRouterToRouterByIdentity(t *testing.T) {
	t.Parallel()
	ep := ipc(t, "rr")
	client := mustNew(t, Router, Options{RouterMandatory: true})
	defer client.Close()
	if err := client.Bind(ep); err != nil {
		t.Fatal(err)
	}
	if err := client.Send([]byte("nobody"), nil, []byte("x")); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("unknown identity: %v, want ErrUnreachable", err)
	}
	server := mustNew(t, Router, Options{Identity: "pushpin-proxy_1"})
	defer server.Close()
	if err := server.Connect(ep); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 5*time.Second, func() error {
		err := client.Send([]byte("pushpin-proxy_1"), nil, []byte("Thello"))
		if err != nil && !errors.Is(err, ErrUnreachable) {
			t.Fatal(err)
		}
		return err
	})
	msg := recvWithin(t, server, 5*time.Second)
	if len(msg) != 3 || len(msg[1]) != 0 || string(msg[2]) != "Thello" {
		t.Fatalf("got %q", msg)
	}
}

func TestPubSubPrefix(t *testing.T) {
	t.Parallel()
	ep := ipc(t, "ps")
	sub := mustNew(t, Sub, Options{Subscribe: []string{"condure "}})
	defer sub.Close()
	if err := sub.Bind(ep); err != nil {
		t.Fatal(err)
	}
	pub := mustNew(t, Pub, Options{})
	defer pub.Close()
	if err := pub.Connect(ep); err != nil {
		t.Fatal(err)
	}
	// PUB drops until the subscription has propagated: keep sending.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		_ = pub.Send([]byte("other Tx"))
		_ = pub.Send([]byte("condure Ty"))
		msg, err := sub.Recv()
		if errors.Is(err, ErrTimeout) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if string(msg[0]) != "condure Ty" {
			t.Fatalf("got %q through the prefix filter", msg[0])
		}
		return
	}
	t.Fatal("no message")
}

// PUSH must round-robin between two PULL peers (the go-zeromq failure).
func TestPushRoundRobin(t *testing.T) {
	t.Parallel()
	ep1, ep2 := ipc(t, "a"), ipc(t, "b")
	p1 := mustNew(t, Pull, Options{})
	p2 := mustNew(t, Pull, Options{})
	defer p1.Close()
	defer p2.Close()
	if err := p1.Bind(ep1); err != nil {
		t.Fatal(err)
	}
	if err := p2.Bind(ep2); err != nil {
		t.Fatal(err)
	}
	push := mustNew(t, Push, Options{Immediate: true})
	defer push.Close()
	_ = push.Connect(ep1)
	_ = push.Connect(ep2)
	// count counts the numbered messages (not probes) s receives.
	count := func(s *Socket) (c, probes int) {
		for {
			msg, err := s.Recv()
			switch {
			case err != nil:
				return c, probes // nothing more within the receive timeout
			case string(msg[0]) == "probe":
				probes++
			default:
				c++
			}
		}
	}
	// Both pipes must be up for a fair split: with Immediate, a message
	// goes only to a connected peer, so probe until each has had one.
	var up1, up2 bool
	testwait.For(t, 5*time.Second, func() error {
		if err := push.Send([]byte("probe")); err != nil {
			return err
		}
		_, n1 := count(p1)
		_, n2 := count(p2)
		up1, up2 = up1 || n1 > 0, up2 || n2 > 0
		if !up1 || !up2 {
			return fmt.Errorf("pipes up: %v, %v", up1, up2)
		}
		return nil
	})
	const n = 100
	for i := 0; i < n; i++ {
		if err := push.Send([]byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	c1, _ := count(p1)
	c2, _ := count(p2)
	if c1+c2 != n || c1 == 0 || c2 == 0 {
		t.Fatalf("split %d/%d, want both non-zero summing to %d", c1, c2, n)
	}
}

// Many multipart messages under heavy preemption signals: none may be lost
// or arrive truncated.
func TestNoTruncationUnderSignals(t *testing.T) {
	t.Parallel()
	ep := ipc(t, "sig")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pull := mustNew(t, Pull, Options{RcvHWM: 100000})
	if err := pull.Bind(ep); err != nil {
		t.Fatal(err)
	}
	push := mustNew(t, Push, Options{SndHWM: 100000})
	if err := push.Connect(ep); err != nil {
		t.Fatal(err)
	}
	// Keep the runtime busy with GC and preemption (SIGURG).
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			_ = make([]byte, 1<<16)
			runtime.GC()
		}
	}()
	const n = 20000
	got := make(chan int, 1)
	go func() {
		c := 0
		RecvLoop(ctx, pull, func(msg [][]byte) {
			if len(msg) != 3 || string(msg[0]) != "id" || !bytes.Equal(msg[2], []byte(fmt.Sprint(c))) {
				t.Errorf("message %d: %q", c, msg)
			}
			c++
			if c == n {
				got <- c
			}
		}, func(err error) { t.Errorf("recv: %v", err) })
	}()
	w := NewSender(push, 1024, func(msg [][]byte, err error) { t.Errorf("send: %v", err) })
	go w.Run(ctx)
	for i := 0; i < n; i++ {
		w.Send([]byte("id"), nil, []byte(fmt.Sprint(i)))
	}
	select {
	case c := <-got:
		if c != n {
			t.Fatalf("got %d", c)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("timed out")
	}
	cancel()
	wg.Wait()
}

func BenchmarkPushPull(b *testing.B) {
	ep := "ipc://" + filepath.Join(b.TempDir(), "bench")
	pull, _ := New(Pull, Options{RcvHWM: 100000})
	defer pull.Close()
	_ = pull.Bind(ep)
	push, _ := New(Push, Options{SndHWM: 100000})
	defer push.Close()
	_ = push.Connect(ep)
	msg := bytes.Repeat([]byte("x"), 200)
	b.ReportAllocs()
	done := make(chan struct{})
	go func() {
		for i := 0; i < b.N; i++ {
			if _, err := pull.Recv(); err != nil {
				i--
			}
		}
		close(done)
	}()
	for i := 0; i < b.N; i++ {
		for push.Send(msg) != nil {
		}
	}
	<-done
}

// With NoDrop a PUB pushes back instead of losing messages when the
// subscriber is slow: every message of a burst far above the HWMs arrives.
func TestPubNoDrop(t *testing.T) {
	t.Parallel()
	ep := ipc(t, "nodrop")
	sub := mustNew(t, Sub, Options{Subscribe: []string{""}, RcvHWM: 10})
	if err := sub.Bind(ep); err != nil {
		t.Fatal(err)
	}
	pub := mustNew(t, Pub, Options{SndHWM: 10, NoDrop: true, SendTimeout: 10}) // closed by its Sender
	if err := pub.Connect(ep); err != nil {
		t.Fatal(err)
	}
	// Wait for the subscription to arrive.
	waitSub := time.Now().Add(5 * time.Second)
	for {
		_ = pub.Send([]byte("hello"))
		if m, err := sub.Recv(); err == nil && string(m[0]) == "hello" {
			break
		}
		if time.Now().After(waitSub) {
			t.Fatal("subscription never arrived")
		}
	}
	for { // drain extra hellos
		sub2, err := sub.Recv()
		if err != nil {
			break
		}
		_ = sub2
	}
	const n = 5000
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	got := make(chan int, 1)
	wg.Add(2)
	go func() {
		defer wg.Done()
		c := 0
		RecvLoop(ctx, sub, func(msg [][]byte) {
			if string(msg[0]) != fmt.Sprint(c) {
				t.Errorf("got %q, want %d", msg[0], c)
			}
			c++
			if c == n {
				got <- c
			}
		}, nil)
	}()
	w := NewSender(pub, 16, func(_ [][]byte, err error) { t.Errorf("send: %v", err) })
	go func() { defer wg.Done(); w.Run(ctx) }()
	for i := 0; i < n; i++ {
		w.Send([]byte(fmt.Sprint(i)))
	}
	select {
	case <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("messages lost")
	}
}

// A Sender sends directly while the socket takes messages and queues once
// the high-water mark pushes back; across the switches every message
// arrives once and in order, and nothing stays pending.
func TestSenderOrderAcrossQueueing(t *testing.T) {
	t.Parallel()
	ep := ipc(t, "order")
	pull := mustNew(t, Pull, Options{RcvHWM: 2})
	if err := pull.Bind(ep); err != nil {
		t.Fatal(err)
	}
	push := mustNew(t, Push, Options{SndHWM: 2, SendTimeout: 5})
	if err := push.Connect(ep); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := NewSender(push, 8, func(_ [][]byte, err error) { t.Errorf("send: %v", err) })
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	const n = 3000
	got := make(chan int, 1)
	go func() {
		c := 0
		RecvLoop(ctx, pull, func(msg [][]byte) {
			if string(msg[0]) != fmt.Sprint(c) {
				t.Errorf("got %q, want %d", msg[0], c)
			}
			c++
			if c%500 == 0 {
				time.Sleep(20 * time.Millisecond) // let the pipe fill: Send must queue
			}
			if c == n {
				got <- c
			}
		}, nil)
	}()
	queued := false
	for i := 0; i < n; i++ {
		w.Send([]byte(fmt.Sprint(i)))
		queued = queued || w.pending.Load() > 0
	}
	select {
	case <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("messages lost")
	}
	if !queued {
		t.Fatal("the high-water mark never made Send queue")
	}
	if p := w.pending.Load(); p != 0 {
		t.Fatalf("%d messages still pending", p)
	}
	cancel()
	<-done
}
