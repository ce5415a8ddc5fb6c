package connmgr

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// acceptor takes connections off a listener with accept4 on a duplicate
// of its descriptor, which the runtime's poller waits on. An accepted
// connection is a bare non-blocking descriptor: it never becomes a
// net.Conn, so it is not registered with the runtime's poller (an
// epoll_ctl to add and one to remove), no getsockname is made, and no
// netFD, TCPConn or addresses are allocated — the connection lives in our
// epoll set only. TCP_NODELAY is set on the listener, which its accepted
// sockets inherit (as Go sets it on every accepted TCP connection).
type acceptor struct {
	ln  net.Listener
	f   *os.File // the duplicate; closing it wakes a waiting accept
	rc  syscall.RawConn
	tcp bool
}

func newAcceptor(ln net.Listener) (*acceptor, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return nil, errors.New("listener has no file descriptor")
	}
	lrc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	_, tcp := ln.(*net.TCPListener)
	dup, serr := -1, error(nil)
	if err := lrc.Control(func(fd uintptr) {
		if tcp {
			if serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); serr != nil {
				return
			}
		}
		dup, serr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, fmt.Errorf("listener: %w", serr)
	}
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return nil, fmt.Errorf("listener: %w", err)
	}
	f := os.NewFile(uintptr(dup), "listener")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &acceptor{ln: ln, f: f, rc: rc, tcp: tcp}, nil
}

func (a *acceptor) close() {
	a.ln.Close()
	a.f.Close()
}

func (s *Server) acceptLoop(a *acceptor) {
	var (
		nfd  int
		sa   unix.Sockaddr
		aerr error
	)
	try := func(fd uintptr) bool {
		nfd, sa, aerr = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		return aerr != unix.EAGAIN
	}
	for {
		if err := a.rc.Read(try); err != nil {
			return // closed
		}
		switch {
		case aerr == unix.EINTR || aerr == unix.ECONNABORTED:
			continue
		case aerr != nil:
			s.log.Warn().Err(aerr).Msg("accept")
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if s.nconns.Load() >= int64(s.cfg.MaxConn) {
			s.log.Debug().Int("max", s.cfg.MaxConn).Msg("connection limit reached; closing new connection")
			unix.Close(nfd)
			continue
		}
		c := s.newConn(nfd, sa)
		if !s.addConn(c) {
			s.log.Warn().Msg("connection table full; closing new connection")
			unix.Close(nfd)
			continue
		}
		c.waitHead()
		// The request is often there already: read it now rather than
		// after a round through the epoll set.
		c.post(event{kind: evIO, mask: unix.EPOLLIN}, nil)
	}
}

// peerOf is the address and port of a TCP peer (empty for local sockets).
func peerOf(sa unix.Sockaddr) (string, int64) {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return net.IP(a.Addr[:]).String(), int64(a.Port)
	case *unix.SockaddrInet6:
		ip := net.IP(a.Addr[:])
		if a.ZoneId != 0 {
			return ip.String() + "%" + strconv.Itoa(int(a.ZoneId)), int64(a.Port)
		}
		return ip.String(), int64(a.Port)
	}
	return "", 0
}
