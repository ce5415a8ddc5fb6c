package main

import (
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// The floor scenario against the tool's own listener, with worker
// processes (this test binary) as readers: every round reaches every
// socket, and the table has its rows in the ours column only, with
// plausible figures (CPU spent on both sides, a round takes some time).
func TestFloorScenario(t *testing.T) {
	const n = 40
	rep := newReport()
	e := &env{ctx: t.Context(), target: targetPushpin, rep: rep, srcs: &srcPool{},
		opt: options{Subs: n, Conc: 10, Drain: 5 * time.Second}, copts: testClientOpts(t, 25), log: zerolog.Nop()}
	rest := runFloor(e, []string{"floor", "scale"})
	if len(rest) != 1 || rest[0] != "scale" {
		t.Fatalf("runFloor left %v", rest)
	}
	if len(rep.errors) > 0 {
		t.Fatal(rep.errors)
	}
	name := floorName(n)
	get := func(metric string) float64 {
		t.Helper()
		rw := rep.index[name+"\x00"+metric]
		if rw == nil || !rw.cells[targetOurs].set || len(rw.cells) != 1 {
			t.Fatalf("row %q: %+v", metric, rw)
		}
		return rw.cells[targetOurs].v
	}
	if got := get("delivered of sockets×rounds"); got != float64(n*floorRounds*len(floorWriters)) {
		t.Errorf("delivered %v", got)
	}
	for _, w := range []string{"1 writer thread", "2 writer threads"} {
		if wall := get(w + ": round wall time p50 (ms)"); wall <= 0 || wall > get(w+": round wall time max (ms)") {
			t.Errorf("%s: wall p50 %v, max %v", w, wall, get(w+": round wall time max (ms)"))
		}
		if cpu := get(w + ": write CPU per socket (µs)"); cpu <= 0 || cpu > 10000 {
			t.Errorf("%s: write CPU %v µs", w, cpu)
		}
	}
	if cpu := get("read CPU per socket and round (µs)"); cpu <= 0 {
		t.Errorf("read CPU %v µs", cpu)
	}
	get("1 writer thread(s): slowest delivery, median round (ms)")

	// Once per run: a second target does not measure it again.
	before := len(rep.rows)
	if rest := runFloor(e, []string{"floor"}); len(rest) != 0 || len(rep.rows) != before {
		t.Fatalf("second run: %v, %d rows (had %d)", rest, len(rep.rows), before)
	}
	var b strings.Builder
	rep.markdown(&b)
	if !strings.Contains(b.String(), "| "+name+" | sockets | 40 | — |  |") {
		t.Errorf("table:\n%s", b.String())
	}
}
