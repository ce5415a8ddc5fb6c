package woh

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/pushpin-go/pushpin/proto/wsevents"
)

func capture(t *testing.T, i int) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "proto", "wsevents", "testdata", fmt.Sprintf("pushpin-%02d-request.bin", i)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The session recorded from Pushpin 1.36 (proto/wsevents/testdata) played
// through a Conn gives the same request bodies, byte for byte, batching
// included.
func TestRequestsMatchPushpinCapture(t *testing.T) {
	t.Parallel()
	var bodies [][]byte
	take := func(acts []Action) {
		for _, r := range of[SendRequest](acts) {
			bodies = append(bodies, r.Body)
		}
	}
	ok := func(c *Conn) { take(respond(c, t0, 200, wohOK(), "")) }
	c, acts := New(Config{})
	take(acts)
	take(respond(c, t0, 200, wohOK(), "OPEN\r\n"))
	take(c.ClientMessage(wsevents.Text, []byte("hi")))
	ok(c)
	take(c.ClientMessage(wsevents.Text, []byte("hold")))
	for i := 1; i <= 5; i++ {
		take(c.ClientMessage(wsevents.Text, []byte(fmt.Sprintf("m%d", i))))
	}
	ok(c) // the held answer: the batch goes
	ok(c)
	take(c.ClientMessage(wsevents.Text, nil))
	ok(c)
	take(c.ClientMessage(wsevents.Binary, []byte{0, 1, 0xff, '\r', '\n'}))
	ok(c)
	take(c.ClientMessage(wsevents.Ping, []byte("pp")))
	ok(c)
	take(c.ClientMessage(wsevents.Text, []byte("after-ping")))
	ok(c)
	take(c.ClientClose(1000, "bye"))

	c2, acts := New(Config{})
	take(acts)
	take(respond(c2, t0, 200, wohOK(), "OPEN\r\n"))
	take(c2.ClientGone())

	if len(bodies) != 11 {
		t.Fatalf("%d requests", len(bodies))
	}
	for i, b := range bodies {
		if want := capture(t, i); !bytes.Equal(b, want) {
			t.Errorf("request %02d: %q, Pushpin sent %q", i, b, want)
		}
	}
}
