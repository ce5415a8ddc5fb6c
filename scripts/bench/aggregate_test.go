package main

import (
	"encoding/binary"
	"os"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestRxStampFindsTheTimestamp(t *testing.T) {
	hdr := unix.CmsgLen(0)
	cmsg := func(level, typ int32, data []byte) []byte {
		b := make([]byte, unix.CmsgSpace(len(data)))
		h := unix.Cmsghdr{Level: level, Type: typ}
		h.SetLen(unix.CmsgLen(len(data)))
		binary.NativeEndian.PutUint64(b[0:], h.Len)
		binary.NativeEndian.PutUint32(b[8:], uint32(level))
		binary.NativeEndian.PutUint32(b[12:], uint32(typ))
		copy(b[hdr:], data)
		return b
	}
	ts := make([]byte, 16)
	binary.NativeEndian.PutUint64(ts, 1700000000)
	binary.NativeEndian.PutUint64(ts[8:], 123)
	other := cmsg(unix.SOL_SOCKET, unix.SCM_RIGHTS, []byte{1, 2, 3, 4})
	buf := slices.Concat(other, cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMPNS_NEW, ts))
	if v, ok := rxStamp(buf); !ok || v != 1700000000*1e9+123 {
		t.Fatalf("got %d %v", v, ok)
	}
	for _, bad := range [][]byte{nil, other, buf[:hdr+8], {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0}} {
		if _, ok := rxStamp(bad); ok {
			t.Errorf("%v: stamp found", bad)
		}
	}
}

func FuzzRxStamp(f *testing.F) {
	f.Add([]byte{32, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 64, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) { rxStamp(b) })
}

func TestParseStatCPU(t *testing.T) {
	// Fields 14 and 15 (utime, stime) after a command name with spaces.
	line := "42 (a b) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 100 1000 10"
	if v, ok := parseStatCPU([]byte(line)); !ok || v != 325 {
		t.Fatalf("got %d %v", v, ok)
	}
	if _, ok := parseStatCPU([]byte("42 (x) S 1 2")); ok {
		t.Fatal("short line parsed")
	}
	self, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := parseStatCPU(self); !ok {
		t.Fatalf("own stat %q not parsed", self)
	}
}

func TestMemoryByRole(t *testing.T) {
	m, err := measureMem([]int{os.Getpid()})
	if err != nil || m.Procs != 1 || m.RSS <= 0 || len(m.ByRole) != 1 {
		t.Fatalf("%+v: %v", m, err)
	}
	m.ByRole = map[string]memUse{"zurl": {}, "bench": {}, "connmgr": {}, "handler": {}, "awk": {}}
	if got := m.roles(); !slices.Equal(got, []string{"connmgr", "handler", "zurl", "awk", "bench"}) {
		t.Fatalf("roles %v", got)
	}
}

func TestParseFanout(t *testing.T) {
	got, err := parseFanout("stream:10000, sse:10000,ws:5,stream:19500", "", 1)
	want := []fanoutRun{{"stream", 10000}, {"sse", 10000}, {"ws", 5}, {"stream", 19500}}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("%v %v", got, err)
	}
	got, err = parseFanout("", "stream,ws", 7)
	if err != nil || !slices.Equal(got, []fanoutRun{{"stream", 7}, {"ws", 7}}) {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"stream", "stream:0", "tcp:5", "stream:x", ","} {
		if _, err := parseFanout(bad, "", 1); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestIntervalRule(t *testing.T) {
	o := options{}
	for n, want := range map[int]time.Duration{1: 20 * time.Millisecond, 2000: 200 * time.Millisecond,
		10000: time.Second, 19500: 1950 * time.Millisecond, 100000: 5 * time.Second} {
		if got := o.intervalFor(n); got != want {
			t.Errorf("%d subscribers: %v, want %v", n, got, want)
		}
	}
	o.Interval = time.Millisecond
	if o.intervalFor(100000) != time.Millisecond {
		t.Error("-interval does not override")
	}
}

func TestMedianSlowest(t *testing.T) {
	fin := finishResult{SeqMax: []time.Duration{5, 1, 9, 3}}
	if got := medianSlowest(fin); got != 3 || fin.SeqMax[0] != 5 { // 1, 3, 5, 9 → lower middle; input kept
		t.Fatalf("got %v, %v", got, fin.SeqMax)
	}
}
