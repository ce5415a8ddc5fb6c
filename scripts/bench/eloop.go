package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// loop is one epoll event loop of a worker process: it opens its share of
// the held connections (at most maxInflight at a time, non-blocking
// connects), then reads every one of them. One goroutine and one 64 KB read
// buffer serve thousands of connections, so what the receivers measure is
// the target's latency, not the load tool's scheduling.
type loop struct {
	epfd        int
	conns       []wconn
	next        int     // next connection to open
	inflight    []int32 // connections being opened
	maxInflight int
	dst         unix.SockaddrInet4
	srcs        []unix.SockaddrInet4
	path        func(i int) string // request path of global index i
	timeout     int64              // open timeout, ns
	failLimit   int                // stop opening after this many failures
	k           int
	reach       int64 // ns: deliveries within it are counted per message
	wsc         wsConfig

	buf    []byte
	events []unix.EpollEvent
	now    int64 // arrival time of the bytes being parsed
	msg    unix.Msghdr
	iov    unix.Iovec
	oob    []byte

	// Owned by the loop goroutine; read by others after opened is closed
	// (open figures) or after run returned (the rest).
	lat, openLat          *hist
	seqMax                []int64
	seqWithin, seqCount   []uint64
	held, failed, skipped int
	firstErr              error // of the opens
	loopErr               error // the loop stopped early
	lastMsg               int64
	opened                chan struct{} // closed once no open is pending or in flight
	openedDone            bool

	// Read while the loop runs.
	probed, done, ended atomic.Int64
	delivered           atomic.Int64 // numbered messages received (new ones only)
	probes              atomic.Int64 // probe lines received, repeats included
	lastProbe           atomic.Int64
	stop                atomic.Bool

	// WebSocket (wsloop.go).
	closeFrames atomic.Int64 // connections the target closed with a close frame
	resume      atomic.Bool  // read the paused connections again
	resumed     bool
	closeCode   int    // the first close frame's code
	closeReason string // and reason
	closeNext   int    // next connection to close
	closesSent  int
	closesDone  int
}

// wconn is one held connection.
type wconn struct {
	respParser
	tally
	l       *loop
	fd      int32
	slot    int32 // index in l.conns: the epoll cookie
	pos     int32 // index in l.inflight while opening, else -1
	index   int   // global subscriber index
	started int64
	state   uint8
	probed  bool
	wasHeld bool
	// WebSocket only (wsloop.go).
	ws      *wsReader
	ended   uint8 // endedNot, endedFrame, endedOther
	closing bool  // the client sent its close frame
	paused  bool  // not read until resumed (a client that cannot keep up)
}

// Connection states.
const (
	stIdle uint8 = iota
	stConnecting
	stOpening // request sent, waiting for the head and "ok"
	stHeld
	stClosed
)

type loopConfig struct {
	dst       [4]byte
	port      int
	srcs      [][4]byte
	indexes   []int // global subscriber indexes served by this loop
	path      func(i int) string
	conc      int
	timeout   time.Duration
	failLimit int
	k         int
	reach     time.Duration
	ws        wsConfig
}

func newLoop(c loopConfig) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create: %w", err)
	}
	l := &loop{
		epfd: epfd, conns: make([]wconn, len(c.indexes)), maxInflight: max(c.conc, 1),
		dst: unix.SockaddrInet4{Port: c.port, Addr: c.dst}, path: c.path,
		timeout: int64(c.timeout), failLimit: max(c.failLimit, 1), k: c.k, reach: int64(c.reach), wsc: c.ws,
		buf: make([]byte, 64<<10), events: make([]unix.EpollEvent, 256), oob: make([]byte, 128),
		lat: newHist(), openLat: newHist(), seqMax: make([]int64, c.k),
		seqWithin: make([]uint64, c.k), seqCount: make([]uint64, c.k), opened: make(chan struct{}),
	}
	for _, s := range c.srcs {
		l.srcs = append(l.srcs, unix.SockaddrInet4{Addr: s})
	}
	words := tallyWords(c.k)
	slab := make([]uint64, words*len(c.indexes))
	for i, idx := range c.indexes {
		w := &l.conns[i]
		w.l, w.fd, w.slot, w.pos, w.index = l, -1, int32(i), -1, idx
		w.tally.init(c.k, slab[i*words:(i+1)*words:(i+1)*words])
	}
	return l, nil
}

// napTime is how long the loop waits, once no open is in flight, before
// looking for more data after a wake-up that found little: latency comes
// from the kernel's receive timestamps, so waiting costs no precision, and
// collecting 2 ms of deliveries per wake-up instead of waking per
// delivery is most of the difference between a cheap receiver and one that
// competes with the target for the CPU.
const napTime = 2 * time.Millisecond

// run serves the loop until stop is set.
func (l *loop) run() {
	l.startOpens()
	for !l.stop.Load() {
		n, err := l.wait()
		if err != nil && !errors.Is(err, unix.EINTR) {
			l.loopErr = fmt.Errorf("epoll_wait: %w", err)
			break
		}
		for _, ev := range l.events[:max(n, 0)] {
			l.handle(&l.conns[ev.Fd], ev.Events)
		}
		if l.resume.Load() && !l.resumed {
			l.resumeAll()
		}
		if len(l.inflight) > 0 {
			l.expire()
		}
		l.startOpens()
		if n > 0 && n < len(l.events)/2 && len(l.inflight) == 0 {
			time.Sleep(napTime)
		}
	}
	l.markOpened() // unblocks an open that never finished
}

// wait is epoll_wait as a raw syscall, with a 50 ms timeout (how late stop
// and open timeouts are noticed). Through the runtime's syscall path every
// wait longer than 10 ms had sysmon take the P away and then poll every
// 20 µs: a fifth of an idle worker's CPU. Raw, the P stays with the loop;
// the runtime's preemption signal interrupts the wait (EINTR) when needed.
func (l *loop) wait() (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.epfd), uintptr(unsafe.Pointer(&l.events[0])),
		uintptr(len(l.events)), 50, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func (l *loop) handle(c *wconn, ev uint32) {
	switch c.state {
	case stConnecting:
		soErr, err := unix.GetsockoptInt(int(c.fd), unix.SOL_SOCKET, unix.SO_ERROR)
		if err == nil && soErr != 0 {
			err = unix.Errno(soErr)
		}
		if err != nil {
			l.fail(c, fmt.Errorf("connect: %w", err))
			return
		}
		if ev&unix.EPOLLOUT == 0 {
			return
		}
		req := "GET " + l.path(c.index) + " HTTP/1.1\r\nHost: bench\r\n\r\n"
		if c.ws != nil {
			req = wsHandshake(l.path(c.index))
		}
		// The socket is new and its send buffer empty: the request goes in one write.
		if n, err := unix.Write(int(c.fd), []byte(req)); err != nil || n != len(req) {
			l.fail(c, fmt.Errorf("sending request: %d of %d bytes: %v", n, len(req), err))
			return
		}
		// Edge-triggered: a level-triggered item is polled once more after
		// every read only to find it drained, a fifth of the loop's kernel time.
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, int(c.fd),
			&unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET, Fd: c.slot}); err != nil {
			l.fail(c, fmt.Errorf("epoll_ctl: %w", err))
			return
		}
		c.state = stOpening
	case stOpening, stHeld:
		l.read(c)
	}
}

// read takes what the socket has and parses it. Edge-triggered, the
// socket must be drained: a TCP read shorter than the buffer emptied the
// receive queue, so only a full one needs another read.
func (l *loop) read(c *wconn) {
	for c.fd >= 0 && !c.paused {
		n, err := l.recv(int(c.fd))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			return
		}
		if n <= 0 {
			if err == nil {
				err = errors.New("connection closed by the target")
			}
			l.lost(c, err)
			return
		}
		if perr := c.parse(l.buf[:n]); perr != nil {
			l.lost(c, perr)
			return
		}
		if n < len(l.buf) {
			return
		}
	}
}

// recv reads into l.buf and sets l.now to when the data reached the
// socket: the kernel's receive timestamp (SO_TIMESTAMPNS) of the last
// segment read, so the loop's own delays are not counted as the target's.
// A raw recvmsg with the loop's own header: the socket never blocks, and
// nothing is allocated per read.
func (l *loop) recv(fd int) (int, error) {
	l.iov.Base = &l.buf[0]
	l.iov.SetLen(len(l.buf))
	l.msg.Iov = &l.iov
	l.msg.SetIovlen(1)
	l.msg.Control = &l.oob[0]
	l.msg.SetControllen(len(l.oob))
	r, _, e := unix.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&l.msg)), 0)
	if e != 0 {
		return 0, e
	}
	if ts, ok := rxStamp(l.oob[:l.msg.Controllen]); ok {
		l.now = ts
	} else {
		l.now = time.Now().UnixNano()
	}
	return int(r), nil
}

// rxStamp finds the SO_TIMESTAMPNS_NEW control message (64-bit seconds and
// nanoseconds) among a recvmsg's control data.
func rxStamp(oob []byte) (int64, bool) {
	hdr := unix.CmsgLen(0)
	for len(oob) >= hdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		if int(h.Len) < hdr || int(h.Len) > len(oob) {
			return 0, false
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SO_TIMESTAMPNS_NEW && int(h.Len) >= hdr+16 {
			sec := int64(binary.NativeEndian.Uint64(oob[hdr:]))
			nsec := int64(binary.NativeEndian.Uint64(oob[hdr+8:]))
			return sec*1e9 + nsec, true
		}
		oob = oob[min(unix.CmsgSpace(int(h.Len)-hdr), len(oob)):]
	}
	return 0, false
}

// lost ends a connection the target closed (or broke) after or during open.
func (l *loop) lost(c *wconn, err error) {
	if c.state == stOpening {
		l.fail(c, err)
		return
	}
	l.closeFd(c)
	c.state = stClosed
	if c.ended == endedNot {
		c.ended = endedOther
	}
	if c.closing {
		l.closesDone++
	}
	l.ended.Add(1)
}

// bodyLine is the parser's callback for one line of c's body.
func (c *wconn) bodyLine(line []byte) {
	l := c.l
	if c.state == stOpening {
		if string(line) != "ok" {
			l.fail(c, fmt.Errorf("first line %q, want \"ok\"", line))
			return
		}
		c.state, c.wasHeld = stHeld, true
		l.dropInflight(c)
		l.held++
		l.openLat.add(l.now - c.started)
		if c.tally.complete() { // k = 0: nothing to wait for
			l.done.Add(1)
		}
		if l.wsc.CloseAfterOpen {
			l.wsSend(c, wsCloseFrame(1000))
			c.closing = true
		}
		return
	}
	if c.state != stHeld {
		return
	}
	probe, seq, sent, ok := parseLine(line)
	if probe {
		l.probes.Add(1)
		l.lastProbe.Store(l.now)
		if !c.probed {
			c.probed = true
			l.probed.Add(1)
			if l.wsc.Pause {
				l.pause(c)
			}
		}
		return
	}
	if !ok || !c.tally.add(seq) {
		return
	}
	d := l.now - sent
	l.lat.add(d)
	l.lastMsg = l.now
	l.delivered.Add(1)
	l.seqCount[seq]++
	l.seqMax[seq] = max(l.seqMax[seq], d)
	if d <= l.reach {
		l.seqWithin[seq]++
	}
	if c.tally.complete() {
		l.done.Add(1)
	}
}

// startOpens starts connects up to maxInflight, unless failures reached the
// limit: at a target's connection limit every further attempt would only
// wait for its timeout.
func (l *loop) startOpens() {
	for len(l.inflight) < l.maxInflight && l.next < len(l.conns) {
		if l.failed >= l.failLimit {
			l.skipped += len(l.conns) - l.next
			l.next = len(l.conns)
			break
		}
		c := &l.conns[l.next]
		l.next++
		l.connect(c)
	}
	if l.next == len(l.conns) && len(l.inflight) == 0 {
		l.markOpened()
	}
}

func (l *loop) markOpened() {
	if !l.openedDone {
		l.openedDone = true
		close(l.opened)
	}
}

func (l *loop) connect(c *wconn) {
	c.started = time.Now().UnixNano()
	c.pos = int32(len(l.inflight))
	l.inflight = append(l.inflight, c.slot)
	c.state = stConnecting
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		l.fail(c, fmt.Errorf("socket: %w", err))
		return
	}
	c.fd = int32(fd)
	if err := l.wsSetup(c); err != nil {
		l.fail(c, err)
		return
	}
	// Bind the source address but let connect pick the port, so the
	// ephemeral range is per (source, destination) rather than per source.
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS_NEW, 1); err != nil {
		l.fail(c, fmt.Errorf("SO_TIMESTAMPNS: %w", err))
		return
	}
	if len(l.srcs) > 0 {
		src := &l.srcs[c.index%len(l.srcs)]
		if err := unix.Bind(fd, src); err != nil {
			l.fail(c, fmt.Errorf("bind %v: %w", src.Addr, err))
			return
		}
	}
	if err := unix.Connect(fd, &l.dst); err != nil && !errors.Is(err, unix.EINPROGRESS) {
		l.fail(c, fmt.Errorf("connect: %w", err))
		return
	}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd,
		&unix.EpollEvent{Events: unix.EPOLLOUT, Fd: c.slot}); err != nil {
		l.fail(c, fmt.Errorf("epoll_ctl: %w", err))
	}
}

// expire fails the opens that took longer than the timeout.
func (l *loop) expire() {
	deadline := time.Now().UnixNano() - l.timeout
	for i := 0; i < len(l.inflight); {
		c := &l.conns[l.inflight[i]]
		if c.started < deadline {
			l.fail(c, fmt.Errorf("no response within %v", time.Duration(l.timeout)))
			continue // fail swapped another entry into i
		}
		i++
	}
}

// fail gives up on a connection that did not become a hold.
func (l *loop) fail(c *wconn, err error) {
	l.failed++
	if l.firstErr == nil {
		l.firstErr = err
	}
	l.dropInflight(c)
	l.closeFd(c)
	c.state = stClosed
	c.respParser = respParser{}
	c.ws = nil
}

func (l *loop) dropInflight(c *wconn) {
	if c.pos < 0 {
		return
	}
	last := len(l.inflight) - 1
	moved := l.inflight[last]
	l.inflight[c.pos] = moved
	l.conns[moved].pos = c.pos
	l.inflight = l.inflight[:last]
	c.pos = -1
}

func (l *loop) closeFd(c *wconn) {
	if c.fd >= 0 {
		unix.Close(int(c.fd))
		c.fd = -1
	}
}

// shut closes every connection with a reset (no TIME_WAIT left behind to
// hold ports and conntrack entries for the next scenario) and the epoll fd.
// Call it after run returned.
func (l *loop) shut() {
	for i := range l.conns {
		c := &l.conns[i]
		if c.fd >= 0 {
			_ = unix.SetsockoptLinger(int(c.fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1})
			l.closeFd(c)
		}
	}
	unix.Close(l.epfd)
}

// result adds up the loop's receivers (after run returned).
func (l *loop) result() counts {
	var c counts
	for i := range l.conns {
		w := &l.conns[i]
		if w.wasHeld {
			c.addReceiver(&w.tally, w.ended)
		}
	}
	return c
}
