package connmgr

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// waitReadable blocks until rc has data (or EOF/error) without holding a
// buffer: the callback peeks one byte into its own stack array and lets the
// runtime poller park the goroutine only while that would block. It peeks
// again after every wake-up, because the poller can report a stale edge
// (an event for bytes that were already read), and trusting it would leave
// the caller blocked in Read holding a buffer.
func waitReadable(rc syscall.RawConn) error {
	return rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return err != unix.EAGAIN && err != unix.EINTR // data, EOF or an error: let Read report it
	})
}

// listen opens a listener; TCP ones get SO_REUSEPORT so that several
// connection managers can share the client port.
func listen(l Listen) (net.Listener, error) {
	if l.Local {
		if err := os.Remove(l.Addr); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return net.Listen("unix", l.Addr)
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(context.Background(), "tcp", l.Addr)
}
