package main

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestMessageRoundTrip(t *testing.T) {
	sent := time.Unix(1700000000, 123456789)
	for _, mode := range []string{"stream", "sse"} {
		var got []int
		for _, line := range strings.SplitAfter(frame(mode, messageLine(42, sent)), "\n") {
			if line == "" {
				continue
			}
			if _, seq, ts, ok := parseLine(line); ok {
				got = append(got, seq)
				if ts != sent.UnixNano() {
					t.Errorf("%s: ts %d", mode, ts)
				}
			}
		}
		if len(got) != 1 || got[0] != 42 {
			t.Errorf("%s: parsed %v", mode, got)
		}
		probe := false
		for _, line := range strings.SplitAfter(frame(mode, probeLine), "\n") {
			p, _, _, _ := parseLine(line)
			probe = probe || p
		}
		if !probe {
			t.Errorf("%s: probe not recognised", mode)
		}
	}
	for _, bad := range []string{"ok\n", "m\n", "m 1\n", "m x 2\n", "m -1 2\n", "m 1 y\n", "event: m\n", "\n"} {
		if p, _, _, ok := parseLine(bad); ok || p {
			t.Errorf("%q parsed", bad)
		}
	}
}

func FuzzParseLine(f *testing.F) {
	for _, s := range []string{"m 0 1700000000000000000\n", "data: m 3 5\n", "p\n", "data: p\n", "ok\n", "event: m\n", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		probe, seq, _, ok := parseLine(s)
		if ok && (probe || seq < 0) {
			t.Fatalf("%q: probe %v seq %d ok", s, probe, seq)
		}
	})
}

// A chunked streaming server on loopback stands in for a target: holds open
// after "ok\n", and receivers tally what follows.
func TestHoldsAndReceivers(t *testing.T) {
	const n, k = 5, 4
	ready := make(chan struct{}, n)
	release := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("ch") == "" {
			w.WriteHeader(404)
			return
		}
		fl := w.(http.Flusher)
		fmt.Fprint(w, "ok\n")
		fl.Flush()
		ready <- struct{}{}
		<-release
		fmt.Fprint(w, frame("sse", probeLine))
		now := time.Now()
		// seq 2 missing, 1 duplicated, 3 before 1.
		for _, seq := range []int{0, 3, 1, 1} {
			fmt.Fprint(w, frame("sse", messageLine(seq, now)))
			fl.Flush()
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	if _, err := openHold(ln.Addr().String(), "/x", 5*time.Second); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("404 hold: %v", err)
	}
	holds, lat, err := openHolds(t.Context(), ln.Addr().String(), n, 2, func(i int) string { return fmt.Sprintf("/s?ch=%d", i) })
	if err != nil || len(holds) != n || len(lat) != n {
		t.Fatalf("holds %d lat %d: %v", len(holds), len(lat), err)
	}
	rc := startReceivers(holds, k)
	close(release)
	if err := waitCount(t.Context(), &rc.probed, n, 5*time.Second, 5*time.Millisecond, nil); err != nil {
		t.Fatalf("probed %d: %v", rc.probed.Load(), err)
	}
	// The handler returns after its last write; the reader then sees EOF
	// (terminal chunk) and ends, so stop does not cut deliveries short.
	if err := waitCount(t.Context(), &rc.ended, n, 5*time.Second, 5*time.Millisecond, nil); err != nil {
		t.Fatalf("ended %d: %v", rc.ended.Load(), err)
	}
	rc.stop()
	tot := mergeTallies(rc.tallies, n, k)
	if tot.Delivered != n*3 || tot.Lost != n || tot.Dups != n || tot.Reorders != n || tot.Incomplete != n || rc.done.Load() != 0 {
		t.Fatalf("totals %+v done %d", tot, rc.done.Load())
	}
	if rc.lastReceive().IsZero() {
		t.Fatal("no last receive time")
	}
}
