package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestGetDistinctBindableOutsideEphemeral(t *testing.T) {
	low := ephemeralLow()
	seen := map[int]bool{}
	for range 500 {
		p, err := Get()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		if low-lowest >= 1000 && (p < lowest || p >= low) {
			t.Fatalf("port %d outside %d-%d", p, lowest, low-1)
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d not bindable: %v", p, err)
		}
		l.Close()
	}
}

func TestGetSkipsHeldPort(t *testing.T) {
	p, err := Get()
	if err != nil {
		t.Fatal(err)
	}
	// Hold the port that comes next and check it is skipped. If someone
	// else holds it already, it must be skipped all the same.
	mu.Lock()
	want := next
	mu.Unlock()
	if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(want)); err == nil {
		defer l.Close()
	}
	q, err := Get()
	if err != nil {
		t.Fatal(err)
	}
	if q == want || q == p {
		t.Fatalf("got %d; held %d, previous %d", q, want, p)
	}
}
