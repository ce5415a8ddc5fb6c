package main

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistBucketsCoverEveryValueOnce(t *testing.T) {
	// Every bucket's range starts where the previous one ended, and a value
	// maps to the bucket whose range holds it.
	for i := 1; i < histBuckets; i++ {
		if histLow(i) <= histLow(i-1) {
			t.Fatalf("bucket %d starts at %d, %d before", i, histLow(i), histLow(i-1))
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		v := r.Int64N(1 << uint(r.IntN(62)+1))
		i := histIndex(v)
		if v < histLow(i) || (i+1 < histBuckets && v >= histLow(i+1)) {
			t.Fatalf("%d in bucket %d [%d, %d)", v, i, histLow(i), histLow(i+1))
		}
		if w := histLow(i+1) - histLow(i); w > 1 && float64(w) > float64(v)/histSub {
			t.Fatalf("%d: bucket width %d over 1/%d", v, w, histSub)
		}
	}
}

// Quantiles are within a bucket (0.8 %) of the exact nearest-rank ones.
func TestHistQuantilesMatchExactPercentiles(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	h := newHist()
	var exact []time.Duration
	for range 50000 {
		// Log-normal-ish: 0.1 ms … 2 s.
		v := int64(float64(100*time.Microsecond) * float64(uint64(1)<<uint(r.IntN(14))) * (1 + r.Float64()))
		h.add(v)
		exact = append(exact, time.Duration(v))
	}
	slices.Sort(exact)
	for _, p := range []float64{1, 50, 90, 99, 99.9, 100} {
		want := float64(percentile(exact, p))
		got := float64(h.quantile(p))
		if got < want*(1-1.0/histSub) || got > want*(1+1.0/histSub) {
			t.Errorf("p%v = %v, exact %v", p, time.Duration(got), time.Duration(want))
		}
	}
	s := h.summary()
	if s.N != 50000 || s.Min != exact[0] || s.Max != exact[len(exact)-1] {
		t.Fatalf("summary %+v", s)
	}
	if h.quantile(0) != h.min || (newHist().summary() != summary{}) {
		t.Fatal("p0 is the minimum; an empty histogram summarizes to zero")
	}
}

func TestHistMergeAndWire(t *testing.T) {
	a, b, all := newHist(), newHist(), newHist()
	for i := int64(0); i < 1000; i++ {
		a.add(i * 1000)
		b.add(i*7919 + 3)
		all.add(i * 1000)
		all.add(i*7919 + 3)
	}
	b.add(-5) // clamped to 0
	all.add(0)
	raw, err := json.Marshal(b.wire())
	if err != nil {
		t.Fatal(err)
	}
	var w wireHist
	if err := json.Unmarshal(raw, &w); err != nil {
		t.Fatal(err)
	}
	back, err := w.hist()
	if err != nil {
		t.Fatal(err)
	}
	a.merge(back)
	a.merge(nil)
	a.merge(newHist())
	if a.n != all.n || a.sum != all.sum || a.min != all.min || a.max != all.max || !slices.Equal(a.counts, all.counts) {
		t.Fatalf("merged %v/%v/%v/%v, want %v/%v/%v/%v", a.n, a.sum, a.min, a.max, all.n, all.sum, all.min, all.max)
	}
	if len(raw) > 20000 {
		t.Fatalf("sparse form is %d bytes", len(raw))
	}
	for _, bad := range []wireHist{
		{N: 2, Buckets: [][2]uint64{{1, 1}}},
		{N: 1, Buckets: [][2]uint64{{histBuckets, 1}}},
	} {
		if _, err := bad.hist(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func BenchmarkHistAdd(b *testing.B) {
	h := newHist()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.add(int64(i) * 997)
	}
}
