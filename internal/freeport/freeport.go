// Package freeport hands out loopback TCP ports for programs that must be
// told a port before they bind it: a pushpin.conf written for child
// processes in tests and in the load tool.
//
// Binding 127.0.0.1:0 and closing gives a port from the kernel's ephemeral
// range, which the kernel may hand straight back out as the source port of
// any outgoing connection (and tests make thousands) before the child binds
// it: "Address already in use". Ports here come from below the ephemeral
// range instead, each at most once per process, from a random start so that
// two processes running at once seldom walk the same ports.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// lowest is the bottom of the range handed out; below it sit ports that
// system services commonly use.
const lowest = 10000

var (
	mu           sync.Mutex
	lo, hi, next int // hi (exclusive) is 0 until first use; next walks [lo, hi)
)

// Get returns a loopback TCP port that no one held a moment ago, was not
// returned before by this process, and lies outside the ephemeral range
// where the system has one below it.
func Get() (int, error) {
	mu.Lock()
	defer mu.Unlock()
	if hi == 0 {
		lo, hi = lowest, ephemeralLow()
		next = lo + rand.IntN(max(hi-lo, 1))
	}
	if hi-lo < 1000 {
		return kernelPort() // no room below the ephemeral range
	}
	for range hi - lo {
		p := next
		next++
		if next >= hi {
			next = lo
		}
		if bindable(p) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("freeport: no free port in %d-%d", lo, hi-1)
}

func bindable(p int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// ephemeralLow reads the bottom of the kernel's ephemeral range; Linux's
// default (32768) when it cannot.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}

func kernelPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("freeport: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
