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
// buffer: the callback peeks one byte into its own stack array, and only
// when that would block does it let the runtime poller park the goroutine.
// (Returning false blindly on the first call would miss data that arrived
// before the wait, since the poller only reports edges.)
func waitReadable(rc syscall.RawConn) error {
	waited := false
	err := rc.Read(func(fd uintptr) bool {
		if waited {
			return true
		}
		var b [1]byte
		_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		if err == unix.EAGAIN || err == unix.EINTR {
			waited = true
			return false
		}
		return true // data, EOF or an error: let Read report it
	})
	return err
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
