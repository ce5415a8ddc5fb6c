package e2e

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/internal/testwait"
)

// tiers names the program that runs each tier of a stack.
type tiers struct {
	name                          string
	connmgr, proxy, handler, zurl string
}

var allReal = tiers{"pushpin-1.36", realCondure, realProxy, realHandler, realZurl}

// start brings up a stack with the given tiers and waits until it serves.
func (tr tiers) start(t *testing.T, routes string) *stack {
	t.Helper()
	s := newStack(t, routes)
	s.write(t)
	// The connection manager binds the sockets the proxy and handler connect
	// to; starting it first lets their PUB sockets see its subscription
	// before the first session (PUB drops what no subscriber has asked for).
	cm := s.startConnMgr(t, tr.connmgr)
	testwait.For(t, 10*time.Second, func() error {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.HTTPPort))
		if err == nil {
			c.Close()
		}
		return err
	})
	s.Procs = map[string]*proc{
		"connmgr": cm,
		"zurl":    s.startZurl(t, tr.zurl),
		"handler": s.startHandler(t, tr.handler),
		"proxy":   s.startProxy(t, tr.proxy),
	}
	return s
}

// scenarioTestRoute: the built-in test route answers, holds a stream and
// delivers a publish into it.
func scenarioTestRoute(t *testing.T, tr tiers) {
	s := tr.start(t, "* test")
	s.waitReady(t, "/")
	expectTestRoute(t, s, "GET /")
	st := openStreamExpect(t, s.Client, s.url("/stream"), "[stream opened]\n")
	// The subscription may take a moment to be registered: publish until seen.
	got := make(chan string, 1)
	go func() { got <- st.next(t, 10*time.Second) }()
	deadline := time.After(10 * time.Second)
	for {
		s.publish(t, `{"items":[{"channel":"test","formats":{"http-stream":{"content":"hello there\n"}}}]}`)
		select {
		case l := <-got:
			if l != "hello there\n" {
				t.Fatalf("published line %q", l)
			}
			return
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatal("publish never reached the stream")
		}
	}
}
