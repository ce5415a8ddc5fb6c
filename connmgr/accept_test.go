package connmgr

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/pushpin-go/pushpin/internal/testwait"
)

// Accepted connections are bare descriptors: they must still have
// TCP_NODELAY (inherited from the listener), as Go's accepted net.Conns
// do, or a streamed message would wait for the client's delayed ACK.
func TestAcceptedConnNoDelay(t *testing.T) {
	ours(t, "looks at this process's descriptors")
	s, err := New(Config{Listen: []Listen{{Addr: "127.0.0.1:0", Stream: true}}, ZClient: []string{"ipc://" + t.TempDir() + "/c"}},
		zerolog.New(zerolog.NewTestWriter(t)).Level(testLogLevel))
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); must(t, <-done) }()
	<-s.Ready()
	dial(t, s.Addrs()[0].String())
	testwait.For(t, 5*time.Second, func() error {
		conns := s.allConns()
		if len(conns) != 1 {
			return fmt.Errorf("%d connections", len(conns))
		}
		v, err := unix.GetsockoptInt(conns[0].fd, unix.IPPROTO_TCP, unix.TCP_NODELAY)
		if err != nil || v == 0 {
			t.Fatalf("TCP_NODELAY %d (%v)", v, err)
		}
		return nil
	})
}
