package handler

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/proto/publish"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// cpuNs is this process's user+system CPU time.
func cpuNs() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// scaleEngine holds n multi-data sessions spread over six connection
// managers, as in the scale scenario.
func scaleEngine(n int) (*engine, *int) {
	var bytes int
	e := newEngine("h1", zerolog.Nop(), func(f []byte) { bytes += len(f) }, nil, 20)
	for i := 0; i < n; i++ {
		e.accept(mdataAccept(fmt.Sprintf("cm%d", i%6), fmt.Sprintf("s%d", i), 1<<40, true))
	}
	return e, &bytes
}

// BenchmarkPublishSixConnMgrs is one publish to n subscribers behind six
// connection managers.
func BenchmarkPublishSixConnMgrs(b *testing.B) {
	for _, n := range []int{100, 10000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			e, _ := scaleEngine(n)
			it := &publish.Item{Channel: "ch", HTTPStream: &publish.HTTPStream{Content: []byte("hello subscribers\n")}}
			b.ReportAllocs()
			b.ResetTimer()
			c0 := cpuNs()
			for i := 0; i < b.N; i++ {
				e.publish(it)
			}
			b.ReportMetric(float64(cpuNs()-c0)/1e3/float64(b.N), "cpu-µs/op")
		})
	}
}

// BenchmarkCreditsReturn is the credits a fan-out earns coming back: list
// packets of 128 ids from the connection managers, for n subscribers.
func BenchmarkCreditsReturn(b *testing.B) {
	for _, n := range []int{100, 10000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			e, _ := scaleEngine(n)
			var pks []*zhttp.Packet
			for from := 0; from < 6; from++ {
				var ids []zhttp.IDSeq
				for i := from; i < n; i += 6 {
					ids = append(ids, zhttp.IDSeq{ID: fmt.Sprintf("s%d", i)})
				}
				for len(ids) > 0 {
					k := min(len(ids), 128)
					pks = append(pks, &zhttp.Packet{From: fmt.Sprintf("cm%d", from), IDs: ids[:k], Type: zhttp.Credit, Credits: 18, HasCredits: true})
					ids = ids[k:]
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			c0 := cpuNs()
			for i := 0; i < b.N; i++ {
				for _, p := range pks {
					for j := range p.IDs {
						p.IDs[j].Seq = int64(i)
					}
					e.onPacket(p)
				}
			}
			b.ReportMetric(float64(cpuNs()-c0)/1e3/float64(b.N), "cpu-µs/op")
		})
	}
}

// BenchmarkMaintain is the once-a-second pass in steady state: n held
// sessions whose last packets out are spread over the keep-alive period
// and whose last packets in are spread over 30 s, the connection managers
// refreshing each session's lastIn every 30 s, and maintain called for
// consecutive seconds. One op is 64 ticks (a wheel turn, more than a
// keep-alive period); cpu-µs/tick is the engine goroutine's CPU per
// second spent in maintain, keep-alives it sends included.
func BenchmarkMaintain(b *testing.B) {
	for _, n := range []int{100, 10000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			e, bytes := scaleEngine(n)
			all := make([]*session, n)
			for i := range all {
				all[i] = e.sessions[sessionKey{fmt.Sprintf("cm%d", i%6), fmt.Sprintf("s%d", i)}]
			}
			// Forward moves only, as real traffic makes them.
			t0 := time.Now()
			for i, s := range all {
				s.lastOut = t0.Add(time.Duration(i) * (44 * time.Second / time.Duration(n)))
				s.lastIn = t0.Add(time.Duration(i%30)*time.Second + time.Duration(i)*(time.Second/time.Duration(n)))
			}
			k := 0
			tick := func() int64 {
				now := t0.Add(44*time.Second + 500*time.Millisecond + time.Duration(k)*time.Second)
				for i := k % 30; i < n; i += 30 {
					all[i].lastIn = now
				}
				k++
				c0 := cpuNs()
				e.maintain(now)
				return cpuNs() - c0
			}
			for range 64 { // warm-up: one turn, so the start's single bucket is spread
				tick()
			}
			*bytes = 0
			b.ReportAllocs()
			b.ResetTimer()
			var cpu int64
			for i := 0; i < b.N; i++ {
				for range 64 {
					cpu += tick()
				}
			}
			if len(e.sessions) != n {
				b.Fatalf("%d sessions left of %d", len(e.sessions), n)
			}
			b.ReportMetric(float64(cpu)/1e3/float64(b.N*64), "cpu-µs/tick")
			b.ReportMetric(float64(*bytes)/float64(b.N*64), "B-sent/tick")
		})
	}
}
