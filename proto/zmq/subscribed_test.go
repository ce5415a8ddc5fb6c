//go:build !purego

package zmq

import (
	"errors"
	"testing"
	"time"
)

// An XPUB that connects to two bound SUBs sees both subscriptions come in
// (WaitSubscribed), and a message sent right after reaches both: nothing
// sent once WaitSubscribed returned is lost to the slow-joiner window.
func TestWaitSubscribedThenNothingLost(t *testing.T) {
	t.Parallel()
	pub := mustNew(t, XPub, Options{XPubVerbose: true, NoDrop: true})
	defer pub.Close()
	var got []chan string
	for _, name := range []string{"cm1", "cm2"} {
		ep := ipc(t, name)
		sub := mustNew(t, Sub, Options{Subscribe: []string{"condure "}})
		if err := sub.Bind(ep); err != nil {
			t.Fatal(err)
		}
		// A connection manager receives all the time: its socket takes
		// in the new pipe (and sends its subscription) within a receive.
		c := make(chan string, 1)
		got = append(got, c)
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			defer sub.Close()
			for {
				select {
				case <-stop:
					return
				default:
				}
				msg, err := sub.Recv()
				if errors.Is(err, ErrTimeout) {
					continue
				}
				if err != nil {
					return
				}
				c <- string(msg[0])
			}
		}()
		t.Cleanup(func() { close(stop); <-done })
		if err := pub.Connect(ep); err != nil {
			t.Fatal(err)
		}
	}
	if n := WaitSubscribed(t.Context(), pub, 2, 5*time.Second); n != 2 {
		t.Fatalf("%d subscriptions seen, want 2 (the same prefix twice: verbose)", n)
	}
	if err := pub.Send([]byte("condure T1")); err != nil {
		t.Fatal(err)
	}
	for i, c := range got {
		select {
		case m := <-c:
			if m != "condure T1" {
				t.Fatalf("subscriber %d got %q", i, m)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("subscriber %d got nothing", i)
		}
	}
}

// With no subscriber, WaitSubscribed gives up after d.
func TestWaitSubscribedGivesUp(t *testing.T) {
	t.Parallel()
	pub := mustNew(t, XPub, Options{XPubVerbose: true})
	defer pub.Close()
	if err := pub.Connect(ipc(t, "nobody")); err != nil {
		t.Fatal(err)
	}
	if got := WaitSubscribed(t.Context(), pub, 1, 200*time.Millisecond); got != 0 {
		t.Fatalf("%d subscriptions from nobody", got)
	}
}
