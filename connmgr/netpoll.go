package connmgr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// ioLoop owns one epoll set. Connections register their descriptor in it
// (edge-triggered, see conn.rearm); the loop turns each readiness into an
// event posted to the connection, which usually runs right here.
//
// The loop never blocks in epoll_wait: it polls the set without waiting
// and, when nothing is ready, parks in the runtime's poller, which
// watches the epoll descriptor itself (readable while events are ready).
// A goroutine blocked in a syscall keeps its P until sysmon retakes it,
// and handing Ps and threads back and forth on every wake-up cost more
// than the request.
type ioLoop struct {
	s      *Server
	epfd   int
	wakefd int      // eventfd: written to stop the loop
	f      *os.File // a duplicate of epfd, registered with the runtime's poller
	rc     syscall.RawConn
}

// wakeKey is the epoll data of the wake eventfd; no connection's key
// (epollKey) is 0.
const wakeKey = 0

func newIOLoop(s *Server) (*ioLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeKey}); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	l := &ioLoop{s: s, epfd: epfd, wakefd: wakefd}
	dup, err := unix.FcntlInt(uintptr(epfd), unix.F_DUPFD_CLOEXEC, 0)
	if err == nil {
		err = unix.SetNonblock(dup, true)
		l.f = os.NewFile(uintptr(dup), "epoll")
		if err == nil {
			l.rc, err = l.f.SyscallConn()
		}
	}
	if err != nil {
		l.close()
		return nil, fmt.Errorf("epoll descriptor: %w", err)
	}
	return l, nil
}

// run waits for readiness until stop.
func (l *ioLoop) run() {
	events := make([]unix.EpollEvent, 256)
	var (
		n    int
		werr error
	)
	poll := func(uintptr) bool {
		for {
			n, werr = unix.EpollWait(l.epfd, events, 0)
			if werr != unix.EINTR {
				return n > 0 || werr != nil
			}
		}
	}
	for {
		if err := l.rc.Read(poll); err != nil {
			l.s.log.Error().Err(err).Msg("epoll wait")
			return
		}
		if werr != nil {
			l.s.log.Error().Err(werr).Msg("epoll_wait")
			return
		}
		for i := range events[:n] {
			ev := &events[i]
			key := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if key == wakeKey {
				return
			}
			if c := l.s.connByKey(key); c != nil {
				c.post(event{kind: evIO, mask: ev.Events}, nil)
			}
		}
	}
}

func (l *ioLoop) stop() {
	var one = [8]byte{1}
	_, _ = unix.Write(l.wakefd, one[:])
}

func (l *ioLoop) close() {
	if l.f != nil {
		l.f.Close()
	}
	unix.Close(l.epfd)
	unix.Close(l.wakefd)
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
