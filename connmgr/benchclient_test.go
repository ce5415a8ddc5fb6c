package connmgr

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The delivery benchmark needs up to 10,000 client connections; with the
// server side in the same process that would pass the 20,000-fd limit, so
// the clients live in a child process: the test binary re-run with
// CONNMGR_BENCH_CLIENT set (see benchClientMain).
func TestMain(m *testing.M) {
	if spec := os.Getenv("CONNMGR_BENCH_LOAD"); spec != "" {
		if err := loadMain(spec); err != nil {
			fmt.Fprintln(os.Stderr, "bench load:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if spec := os.Getenv("CONNMGR_BENCH_CLIENT"); spec != "" {
		if err := benchClientMain(spec); err != nil {
			fmt.Fprintln(os.Stderr, "bench client:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// benchClientMain opens n connections to addr, sends a streaming GET on
// each and then only counts bytes: "ready" once n response heads (head
// bytes each) arrived, then one line per message once every connection
// got msg more bytes. Order within a connection is TCP's; the count is
// enough to know every client got the message.
func benchClientMain(spec string) error {
	var addr string
	var n, head, msg int
	if _, err := fmt.Sscan(spec, &addr, &n, &head, &msg); err != nil {
		return fmt.Errorf("spec %q: %w", spec, err)
	}
	port, err := strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
	if err != nil {
		return err
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	req := []byte("GET /stream HTTP/1.1\r\nHost: bench\r\n\r\n")
	for i := 0; i < n; i++ {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		if err := retryEINTR(func() error {
			return unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}})
		}); err != nil {
			return fmt.Errorf("connect %d: %w", i, err)
		}
		if err := retryEINTR(func() error { _, err := unix.Write(fd, req); return err }); err != nil {
			return err
		}
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			return err
		}
	}
	out := bufio.NewWriter(os.Stdout)
	events := make([]unix.EpollEvent, 1024)
	buf := make([]byte, 1<<16)
	var total, next int64 = 0, int64(n * head)
	ready := false
	for {
		k, err := unix.EpollWait(ep, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		for _, ev := range events[:k] {
			m, err := unix.Read(int(ev.Fd), buf)
			if err == unix.EINTR || err == unix.EAGAIN {
				continue
			}
			if m <= 0 {
				return fmt.Errorf("connection closed after %d bytes in all: %v", total, err)
			}
			total += int64(m)
		}
		for total >= next {
			if !ready {
				ready = true
				_, _ = out.WriteString("ready\n") // a bufio error is sticky: Flush reports it
			} else {
				_, _ = out.WriteString("msg\n")
			}
			next += int64(n * msg)
		}
		if err := out.Flush(); err != nil {
			return err
		}
	}
}

func retryEINTR(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}
