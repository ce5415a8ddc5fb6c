package main

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestMessageRoundTrip(t *testing.T) {
	sent := time.Unix(1700000000, 123456789)
	for _, mode := range []string{"stream", "sse"} {
		var got []int
		for _, line := range strings.SplitAfter(frame(mode, messageLine(42, sent)), "\n") {
			if line == "" {
				continue
			}
			if _, seq, ts, ok := parseLine([]byte(line)); ok {
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
			p, _, _, _ := parseLine([]byte(line))
			probe = probe || p
		}
		if !probe {
			t.Errorf("%s: probe not recognised", mode)
		}
	}
	for _, bad := range []string{"ok\n", "m\n", "m 1\n", "m x 2\n", "m -1 2\n", "m 1 y\n", "event: m\n", "\n",
		"m 1 99999999999999999999\n", "m 99999999999 1\n", "m +1 2\n", "m 1  2\n"} {
		if p, _, _, ok := parseLine([]byte(bad)); ok || p {
			t.Errorf("%q parsed", bad)
		}
	}
}

func FuzzParseLine(f *testing.F) {
	for _, s := range []string{"m 0 1700000000000000000\n", "data: m 3 5\n", "p\n", "data: p\n", "ok\n", "event: m\n", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		probe, seq, _, ok := parseLine([]byte(s))
		if ok && (probe || seq < 0) {
			t.Fatalf("%q: probe %v seq %d ok", s, probe, seq)
		}
	})
}

// A chunked streaming server on loopback stands in for a target: holds open
// after "ok\n", and a fleet of worker processes (this test binary, see
// TestMain) tallies what follows.
func TestFleetTalliesWhatArrives(t *testing.T) {
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
	go func() { _ = srv.Serve(ln) }() // ends with ErrServerClosed; a failure shows as failed requests
	defer srv.Close()

	if _, err := openHold(ln.Addr().String(), "/x", 5*time.Second); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("404 hold: %v", err)
	}
	pool := &srcPool{}
	spec := fleetSpec{Addr: ln.Addr().String(), Path: "/s?ch={i}", N: n, Conc: 2, K: k, Srcs: pool.take(2)}
	f, open, err := startFleet(t.Context(), spec, testClientOpts(t, 3), zerolog.Nop())
	defer f.close()
	if err != nil || open.Held != n || open.OpenLat.n != n || len(f.ws) != 2 {
		t.Fatalf("open %+v, %d workers: %v", open, len(f.ws), err)
	}
	close(release)
	waitStatus(t, f, func(s statusReply) bool { return s.Probed == n })
	// The handler returns after its last write; the reader then sees the
	// terminal chunk and counts the hold as closed by the target.
	waitStatus(t, f, func(s statusReply) bool { return s.Ended == n })
	fin, err := f.finish(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tot := totalsOf(fin.Counts, k)
	if tot.Expected != n*k || tot.Delivered != n*3 || tot.Lost != n || tot.Dups != n || tot.Reorders != n ||
		tot.Incomplete != n || fin.Ended != n || fin.Lat.n != n*3 {
		t.Fatalf("totals %+v, finish %+v", tot, fin)
	}
	if fin.LastMsg.IsZero() || fin.SeqCount[2] != 0 || fin.SeqCount[1] != n || fin.SeqWithin[0] != n {
		t.Fatalf("per message %v %v, last %v", fin.SeqCount, fin.SeqWithin, fin.LastMsg)
	}
}
