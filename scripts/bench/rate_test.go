package main

import (
	"fmt"
	"testing"
	"time"
)

// -rate and -burst read as subscribers x rate (or x messages); anything
// else is refused.
func TestParseRate(t *testing.T) {
	runs, msgs, err := parseRate("20x1000, 100x200", false)
	if err != nil || fmt.Sprint(runs, msgs) != "[{20 1000} {100 200}] []" {
		t.Fatalf("rate: %v %v %v", runs, msgs, err)
	}
	runs, msgs, err = parseRate("100x20000", true)
	if err != nil || fmt.Sprint(runs, msgs) != "[{100 0}] [20000]" {
		t.Fatalf("burst: %v %v %v", runs, msgs, err)
	}
	for _, bad := range []string{"20", "x5", "20x", "0x10", "20x0", "ax1", "20:1000"} {
		if _, _, err := parseRate(bad, false); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// A padded message is -size bytes, and the clients still read its number
// (the padding line is longer than any of ours, so it is skipped).
func TestPaddedMessageParses(t *testing.T) {
	line := messageLine(42, time.Unix(0, 12345))
	msg := line + "\n" + padLine(1024)
	if len(msg) < 1000 || len(msg) > 1024 {
		t.Fatalf("message is %d bytes", len(msg))
	}
	var got []int
	p := &respParser{}
	p.text([]byte(msg), sinkFunc(func(l []byte) {
		if _, seq, _, ok := parseLine(l); ok {
			got = append(got, seq)
		} else {
			t.Errorf("line %.40q reached the sink", l)
		}
	}))
	if fmt.Sprint(got) != "[42]" {
		t.Fatalf("parsed %v", got)
	}
}

type sinkFunc func([]byte)

func (f sinkFunc) bodyLine(l []byte) { f(l) }
