package main

import (
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func TestWireRoundTripOverPipes(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a, b := newWireConn(nil, w), newWireConn(r, nil)
	h := newHist()
	h.add(int64(3 * time.Millisecond))
	sent := []wireReply{
		{Open: &openReply{Held: 3, Failed: 1, FirstErr: "connect: refused", OpenLat: h.wire()}},
		{Status: &statusReply{Probed: 2, Done: 1, Ended: 1, LastProbeNs: 42}},
		{Finish: &finishReply{Counts: counts{Receivers: 3, Delivered: 5}, Lat: h.wire(), SeqMax: []int64{7},
			SeqWithin: []uint64{2}, SeqCount: []uint64{3}, CPUNs: 9}},
		{Err: "command \"open\" not valid now"},
	}
	go func() {
		for _, m := range sent {
			if err := a.send(m); err != nil {
				t.Error(err)
			}
		}
		w.Close()
	}()
	for i := range sent {
		var got wireReply
		if err := b.recv(&got); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		switch i {
		case 0:
			if got.Open == nil || got.Open.Held != 3 || got.Open.FirstErr != "connect: refused" || got.Open.OpenLat.N != 1 {
				t.Fatalf("open %+v", got.Open)
			}
		case 1:
			if *got.Status != *sent[1].Status {
				t.Fatalf("status %+v", got.Status)
			}
		case 2:
			fin, err := mergeFinish([]wireReply{got, got})
			if err != nil || fin.Counts.Delivered != 10 || fin.Lat.n != 2 || fin.SeqCount[0] != 6 || fin.SeqMax[0] != 7 || fin.CPU != 18 {
				t.Fatalf("finish %+v: %v", fin, err)
			}
		case 3:
			if got.Err == "" {
				t.Fatal("error lost")
			}
		}
	}
	var rest wireReply
	if err := b.recv(&rest); err != io.EOF {
		t.Fatalf("after the last line: %v", err)
	}
}

func TestWireRejectsGarbage(t *testing.T) {
	for _, in := range []string{"{\"op\":\n", "not json\n", "{\"open\":{\"held\":\"x\"}}\n", "{\"op\":\"open\"}"} {
		c := newWireConn(strings.NewReader(in), nil)
		var r wireReply
		if err := c.recv(&r); err == nil || err == io.EOF {
			t.Errorf("%q: %v", in, err)
		}
	}
	if _, err := mergeFinish([]wireReply{{Finish: &finishReply{SeqMax: []int64{1}}}}); err == nil {
		t.Error("per-message lists of different lengths accepted")
	}
	if _, err := mergeOpen([]wireReply{{}}); err == nil {
		t.Error("open reply without result accepted")
	}
}

func TestOpenCmdCheck(t *testing.T) {
	good := openCmd{Addr: "127.0.0.1:80", Srcs: []string{"127.0.0.2"}, Path: "/s?ch={i}", From: 0, To: 10,
		Conc: 1, Loops: 1, K: 1, TimeoutNs: 1}
	if _, _, err := good.check(); err != nil {
		t.Fatal(err)
	}
	for _, mut := range []func(*openCmd){
		func(o *openCmd) { o.Addr = "localhost:80" },
		func(o *openCmd) { o.Addr = "[::1]:80" },
		func(o *openCmd) { o.Srcs = []string{"::1"} },
		func(o *openCmd) { o.From, o.To = 5, 4 },
		func(o *openCmd) { o.Conc = 0 },
		func(o *openCmd) { o.TimeoutNs = 0 },
		func(o *openCmd) { o.K = -1 },
		func(o *openCmd) { o.Path = "s" },
	} {
		o := good
		mut(&o)
		if _, _, err := o.check(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	if p := pathFunc("/s?ch=c-{i}&x=1"); p(42) != "/s?ch=c-42&x=1" {
		t.Fatal(p(42))
	}
	if p := pathFunc("/s?ch=one"); p(42) != "/s?ch=one" {
		t.Fatal(p(42))
	}
}

func TestWorkerRefusesCommandsOutOfOrder(t *testing.T) {
	w := &worker{}
	for _, op := range []string{opStatus, opFinish, opOpen, "bogus"} {
		if r := w.do(wireCmd{Op: op}); r.Err == "" {
			t.Errorf("%s before open: %+v", op, r)
		}
	}
}

func TestSrcPoolHandsOutFreshAddresses(t *testing.T) {
	p := &srcPool{}
	seen := map[string]bool{}
	for range 300 {
		for _, a := range p.take(2) {
			if seen[a] || !strings.HasPrefix(a, "127.0.") || strings.HasSuffix(a, ".0") || strings.HasSuffix(a, ".255") {
				t.Fatalf("address %s", a)
			}
			seen[a] = true
		}
	}
	o := clientOpts{PerSrc: 10000}
	if o.srcsFor(1) != 1 || o.srcsFor(10000) != 1 || o.srcsFor(10001) != 2 || o.srcsFor(100000) != 10 {
		t.Fatal("srcsFor")
	}
}
