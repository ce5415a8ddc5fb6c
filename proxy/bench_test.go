package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/internal/testwait"
	"github.com/pushpin-go/pushpin/proto/handoff"
	"github.com/pushpin-go/pushpin/proto/zhttp"
	"github.com/pushpin-go/pushpin/proto/zmq"
	"github.com/pushpin-go/pushpin/zurl"
)

// stackRig is the proxied request path in one process: a fake connection
// manager (real ZeroMQ sockets, as condure binds them), our proxy, our zurl
// and a loopback net/http backend. Only the connection manager is fake, so
// a benchmark over it measures proxy + zurl per request.
type stackRig struct {
	push     *zmq.Socket
	pushMu   sync.Mutex
	router   *zmq.Socket // later packets to the proxy (handoff-proceed)
	routerMu sync.Mutex
	mu       sync.Mutex
	wait     map[string]chan *zhttp.Packet
	accepts  chan *handoff.Accept
	seq      atomic.Int64
	stop     func()
}

func newStackRig(tb testing.TB, handler http.Handler) (*stackRig, string) {
	tb.Helper()
	dir, err := os.MkdirTemp("", "pxb")
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	be := &http.Server{Handler: handler}
	go func() { _ = be.Serve(ln) }() // ends with ErrServerClosed; a failure shows as failed requests
	conf := "[global]\ninclude=internal.conf\nrundir=" + dir + "\n[proxy]\nsig_iss=pushpin\nsig_key=changeme\n"
	cfg, err := configs.LoadBytes("pushpin.conf", dir, []byte(conf), configs.Options{Routes: []string{"* " + ln.Addr().String()}})
	if err != nil {
		tb.Fatal(err)
	}
	ipc := func(n string) string { return "ipc://" + filepath.Join(dir, "pushpin-"+n) }
	mk := func(typ zmq.Type, o zmq.Options, ep string) *zmq.Socket {
		s, err := zmq.New(typ, o)
		if err != nil {
			tb.Fatal(err)
		}
		if err := s.Bind(ep); err != nil {
			tb.Fatal(err)
		}
		return s
	}
	r := &stackRig{wait: map[string]chan *zhttp.Packet{}, accepts: make(chan *handoff.Accept, 1000)}
	r.push = mk(zmq.Push, zmq.Options{SndHWM: 100}, ipc("condure-out"))
	r.router = mk(zmq.Router, zmq.Options{Identity: "condure", RouterMandatory: true}, ipc("condure-out-stream"))
	sub := mk(zmq.Sub, zmq.Options{Subscribe: []string{"condure "}, RcvHWM: 101000}, ipc("condure-in"))

	log := zerolog.Nop()
	zs, err := zurl.New(configs.ZurlConfig{InSpec: ipc("zurl-in"), InStreamSpec: ipc("zurl-in-stream"),
		OutSpec: ipc("zurl-out"), DefPolicy: "allow", MaxOpenRequests: 2000, BufferSize: 200000, InHWM: 1000, OutHWM: 1000}, log)
	if err != nil {
		tb.Fatal(err)
	}
	px, err := New(cfg, log, WithID("bench-proxy"), WithSettle(300*time.Millisecond))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); _ = zs.Run(ctx) }()
	go func() { defer wg.Done(); _ = px.Run(ctx) }()
	// The handler's end of the handoff (the proxy binds it).
	hpull, err := zmq.New(zmq.Pull, zmq.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	if err := hpull.Connect(ipc("accept")); err != nil {
		tb.Fatal(err)
	}
	go func() {
		defer wg.Done()
		zmq.RecvLoop(ctx, hpull, func(msg [][]byte) {
			if a, err := handoff.ParseAccept(msg[0]); err == nil {
				r.accepts <- a
			}
		}, nil)
	}()
	go func() {
		defer wg.Done()
		zmq.RecvLoop(ctx, sub, func(msg [][]byte) {
			_, m, err := zhttp.SplitPub(msg[0])
			if err != nil {
				return
			}
			p, err := zhttp.ParseMessage(m)
			if err != nil {
				return
			}
			if p.Type == zhttp.HandoffStart {
				// As condure: agree, at the next seq, to the sender.
				q := zhttp.Packet{From: "condure", ID: p.ID, Seq: 1, HasSeq: true, Type: zhttp.HandoffProceed}
				r.routerMu.Lock()
				_ = r.router.Send([]byte(p.From), nil, q.AppendMessage(nil))
				r.routerMu.Unlock()
				return
			}
			if p.Type != zhttp.Data {
				return // the ack (keep-alive) and credits need no answer here
			}
			r.mu.Lock()
			ch := r.wait[p.ID]
			r.mu.Unlock()
			if ch != nil {
				ch <- p
			}
		}, nil)
	}()
	r.stop = func() {
		cancel()
		wg.Wait()
		r.push.Close()
		r.router.Close()
		be.Close()
		os.RemoveAll(dir)
	}
	tb.Cleanup(r.stop)
	return r, "http://" + ln.Addr().String()
}

// get sends one GET as condure would and waits for the complete response.
func (r *stackRig) get(uri string) (*zhttp.Packet, error) {
	id := "b-" + strconv.FormatInt(r.seq.Add(1), 36)
	ch := make(chan *zhttp.Packet, 4)
	r.mu.Lock()
	r.wait[id] = ch
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.wait, id)
		r.mu.Unlock()
	}()
	p := zhttp.Packet{From: "condure", ID: id, Seq: 0, HasSeq: true, Ext: zhttp.Ext{Multi: true},
		Method: "GET", URI: uri, Headers: zhttp.Headers{{Name: "Host", Value: "example.com"}, {Name: "Accept", Value: "*/*"}},
		HasHeaders: true, Stream: true, Credits: 8192, HasCredits: true, PeerAddress: "127.0.0.1", PeerPort: 5555}
	r.pushMu.Lock()
	err := r.push.Send(p.AppendMessage(nil))
	r.pushMu.Unlock()
	if err != nil {
		return nil, err
	}
	var body []byte
	var code int64
	for {
		select {
		case q := <-ch:
			if q.HasCode {
				code = q.Code
			}
			body = append(body, q.Body...)
			if !q.More {
				q.Body, q.Code = body, code
				return q, nil
			}
		case <-time.After(10 * time.Second):
			return nil, errors.New("no response within 10 s")
		}
	}
}

// hold opens a GRIP stream hold as condure would and waits for the Accept
// the handler gets (the proxy's part of a held connection).
func (r *stackRig) hold(uri string) error {
	id := "h-" + strconv.FormatInt(r.seq.Add(1), 36)
	p := zhttp.Packet{From: "condure", ID: id, Seq: 0, HasSeq: true, Ext: zhttp.Ext{Multi: true},
		Method: "GET", URI: uri, Headers: zhttp.Headers{{Name: "Host", Value: "example.com"}},
		HasHeaders: true, Stream: true, Credits: 8192, HasCredits: true, PeerAddress: "127.0.0.1", PeerPort: 5555}
	r.pushMu.Lock()
	err := r.push.Send(p.AppendMessage(nil))
	r.pushMu.Unlock()
	if err != nil {
		return err
	}
	select {
	case <-r.accepts:
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("no accept within 10 s")
	}
}

// BenchmarkProxiedRequest is one small GET through proxy and zurl to a
// loopback backend, with 1 and 50 requests in flight; allocs/op counts
// every allocation of the process (proxy, zurl, the fake connection
// manager and the backend) per request.
func BenchmarkProxiedRequest(b *testing.B) {
	body := []byte("hello from the bench backend\n")
	r, base := newStackRig(b, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if _, err := w.Write(body); err != nil {
			b.Error(err)
		}
	}))
	uri := base + "/plain"
	// Warm up once the proxy answers (its sockets connect asynchronously).
	testwait.For(b, 10*time.Second, func() error {
		if p, err := r.get(uri); err != nil || string(p.Body) != string(body) {
			return fmt.Errorf("warm-up: %v %v", p, err)
		}
		return nil
	})
	for _, conc := range []int{1, 50} {
		b.Run(fmt.Sprintf("conc_%d", conc), func(b *testing.B) {
			b.ReportAllocs()
			var next atomic.Int64
			var wg sync.WaitGroup
			errc := make(chan error, conc)
			cpu0 := cpuTime()
			b.ResetTimer()
			for w := 0; w < conc; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						p, err := r.get(uri)
						if err == nil && p.Code != 200 {
							err = fmt.Errorf("status %d", p.Code)
						}
						if err != nil {
							errc <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			// CPU time of the whole process per request: robust when
			// other work shares the machine, unlike ns/op.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			select {
			case err := <-errc:
				b.Fatal(err)
			default:
			}
		})
	}
}

// BenchmarkHeldOpen is the proxy's and zurl's part of opening a held
// connection: request, GRIP stream-hold response, handoff-start,
// handoff-proceed, Accept to the handler; 1 and 50 opening at once.
func BenchmarkHeldOpen(b *testing.B) {
	r, base := newStackRig(b, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h := w.Header()
		h.Set("Grip-Hold", "stream")
		h.Set("Grip-Channel", "c"+req.URL.Query().Get("ch"))
		h.Set("Content-Type", "text/plain")
		if _, err := w.Write([]byte("ok\n")); err != nil {
			b.Error(err)
		}
	}))
	uri := base + "/stream?ch=1"
	testwait.For(b, 10*time.Second, func() error { return r.hold(uri) })
	for _, conc := range []int{1, 50} {
		b.Run(fmt.Sprintf("conc_%d", conc), func(b *testing.B) {
			b.ReportAllocs()
			var next atomic.Int64
			var wg sync.WaitGroup
			errc := make(chan error, conc)
			cpu0 := cpuTime()
			b.ResetTimer()
			for w := 0; w < conc; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if err := r.hold(uri); err != nil {
							errc <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			select {
			case err := <-errc:
				b.Fatal(err)
			default:
			}
		})
	}
}

// cpuTime is the user+system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
