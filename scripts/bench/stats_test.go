package main

import (
	"testing"
	"time"
)

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestPercentileNearestRank(t *testing.T) {
	d := ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	cases := []struct {
		p    float64
		want int
	}{{0, 1}, {10, 1}, {11, 2}, {50, 5}, {90, 9}, {91, 10}, {99, 10}, {100, 10}}
	for _, c := range cases {
		if got := percentile(d, c.p); got != time.Duration(c.want)*time.Millisecond {
			t.Errorf("p%v = %v, want %dms", c.p, got, c.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("empty: %v", got)
	}
	if got := percentile(ms(7), 99); got != 7*time.Millisecond {
		t.Errorf("single: %v", got)
	}
}

func TestSummarizeSortsAndAverages(t *testing.T) {
	s := summarize(ms(40, 10, 30, 20))
	want := summary{N: 4, Min: 10 * time.Millisecond, P50: 20 * time.Millisecond, P90: 40 * time.Millisecond,
		P99: 40 * time.Millisecond, Max: 40 * time.Millisecond, Mean: 25 * time.Millisecond}
	if s != want {
		t.Fatalf("got %+v, want %+v", s, want)
	}
	if (summarize(nil) != summary{}) {
		t.Fatal("empty sample must summarize to zero")
	}
}

func TestTallyCountsLossDupsAndReorders(t *testing.T) {
	tl := newTally(70) // spans two bitset words
	fresh := 0
	for _, seq := range []int{0, 1, 3, 2, 3, 65, 64, 69, 70, 1000} {
		if tl.add(seq) {
			fresh++
		}
	}
	if tl.distinct != 7 || tl.dups != 1 || tl.reorders != 2 || tl.bogus != 2 || fresh != 7 {
		t.Fatalf("tally %+v, %d new", tl, fresh)
	}
	if tl.complete() {
		t.Fatal("7 of 70 is not complete")
	}
	full := newTally(70)
	for i := 0; i < 70; i++ {
		full.add(i)
	}
	if !full.complete() {
		t.Fatal("70 of 70 must be complete")
	}

	var a, b counts
	a.addTally(tl)
	b.addTally(full)
	a.add(b)
	tot := totalsOf(a, 70)
	if tot.Expected != 140 || tot.Delivered != 77 || tot.Lost != 63 || tot.Dups != 1 || tot.Reorders != 2 ||
		tot.Bogus != 2 || tot.Incomplete != 1 {
		t.Fatalf("totals %+v", tot)
	}
	if !newTally(0).complete() {
		t.Fatal("a receiver expecting nothing is complete")
	}
}

func TestParseStat(t *testing.T) {
	pid, ppid, ok := parseStat([]byte("4242 (pushpin-proxy) S 4200 4242 1 0 -1"))
	if !ok || pid != 4242 || ppid != 4200 {
		t.Fatalf("got %d %d %v", pid, ppid, ok)
	}
	// A command name with spaces and ')' must not shift the fields.
	pid, ppid, ok = parseStat([]byte("7 (a b) c)) R 3 7 7"))
	if !ok || pid != 7 || ppid != 3 {
		t.Fatalf("odd comm: got %d %d %v", pid, ppid, ok)
	}
	for _, bad := range []string{"", "x (y) S", "12 (y)", "12 (y) S z"} {
		if _, _, ok := parseStat([]byte(bad)); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseList(t *testing.T) {
	got, err := parseList(" fanout, memory ,", allScenarios)
	if err != nil || len(got) != 2 || got[0] != "fanout" || got[1] != "memory" {
		t.Fatalf("got %v %v", got, err)
	}
	if _, err := parseList("fanout,bogus", allScenarios); err == nil {
		t.Fatal("unknown scenario accepted")
	}
	if _, err := parseList(",", allScenarios); err == nil {
		t.Fatal("empty list accepted")
	}
}
