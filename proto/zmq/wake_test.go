//go:build !purego

package zmq

import (
	"errors"
	"testing"
	"time"
)

// recvAsync runs one Recv on another goroutine.
func recvAsync(s *Socket) <-chan error {
	ch := make(chan error, 1)
	go func() {
		msg, err := s.Recv()
		if err == nil && string(msg[0]) != "m" {
			err = errors.New("wrong message " + string(msg[0]))
		}
		ch <- err
	}()
	return ch
}

// Wake ends a Recv that would otherwise wait for ever, and one made just
// after a Wake with nobody waiting; afterwards Recv waits and receives as
// before (at most one more early return, no spinning on a past deadline).
func TestWakeEndsRecv(t *testing.T) {
	t.Parallel()
	for _, rto := range []int{-1, 100} {
		spec := ipc(t, "wake")
		pull := mustNew(t, Pull, Options{RecvTimeout: rto})
		defer pull.Close()
		if err := pull.Bind(spec); err != nil {
			t.Fatal(err)
		}
		push := mustNew(t, Push, Options{})
		defer push.Close()
		if err := push.Connect(spec); err != nil {
			t.Fatal(err)
		}

		got := recvAsync(pull)
		pull.Wake()
		select {
		case err := <-got:
			if !errors.Is(err, ErrTimeout) {
				t.Fatalf("rto %d: woken Recv: %v", rto, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("rto %d: Wake did not end Recv", rto)
		}

		pull.Wake() // nobody receiving: the next Recv returns at once
		if _, err := pull.Recv(); !errors.Is(err, ErrTimeout) {
			t.Fatalf("rto %d: Recv after Wake: %v", rto, err)
		}

		if err := push.Send([]byte("m")); err != nil {
			t.Fatal(err)
		}
		early := 0
		for {
			err := <-recvAsync(pull)
			if err == nil {
				break
			}
			if !errors.Is(err, ErrTimeout) {
				t.Fatalf("rto %d: %v", rto, err)
			}
			if early++; rto < 0 && early > 1 {
				t.Fatalf("rto %d: Recv keeps returning early after a Wake", rto)
			}
			if early > 100 {
				t.Fatalf("rto %d: %d early returns", rto, early)
			}
		}
	}
}
