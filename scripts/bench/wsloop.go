package main

import (
	"fmt"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// The event loop's WebSocket side: the same loop (eloop.go) opens WebSocket
// sessions instead of stream holds when its wsConfig says so. The handshake
// is written where a hold's GET is, the 101 head is read by the response
// parser, and from there a wsReader decodes the frames; a session counts as
// held once its first message ("ok", sent by the backend after subscribing)
// arrives, as a hold does once "ok\n" does.

// wsConfig is what a loop does with WebSocket sessions.
type wsConfig struct {
	On             bool `json:"on,omitempty"`               // open WebSocket sessions, not stream holds
	CloseAfterOpen bool `json:"close_after_open,omitempty"` // send a close frame once held (ws-open)
	Pause          bool `json:"pause,omitempty"`            // stop reading after the first probe, until resume
	RcvBuf         int  `json:"rcvbuf,omitempty"`           // SO_RCVBUF, bytes (0: the kernel's)
}

// How a held connection ended.
const (
	endedNot   uint8 = iota // still open
	endedFrame              // the target sent a close frame
	endedOther              // the target closed or broke it without one
)

// wsSetup prepares a new socket and connection for a WebSocket session.
func (l *loop) wsSetup(c *wconn) error {
	if l.wsc.RcvBuf > 0 {
		// Before connect, so the window is small from the start: a paused
		// client must push back on the target, not on a 6 MB kernel buffer.
		if err := unix.SetsockoptInt(int(c.fd), unix.SOL_SOCKET, unix.SO_RCVBUF, l.wsc.RcvBuf); err != nil {
			return fmt.Errorf("SO_RCVBUF: %w", err)
		}
	}
	if l.wsc.On {
		c.ws = &wsReader{}
		c.upgrade = true
	}
	c.ended, c.closing, c.paused = endedNot, false, false
	return nil
}

// parse hands the bytes read to the response parser and, for a WebSocket
// past its 101, to the frame reader.
func (c *wconn) parse(b []byte) error {
	if c.ws == nil {
		return c.feed(b, c)
	}
	if c.phase == phHead {
		n, err := c.feedHead(b)
		if err != nil || c.phase == phHead {
			return err
		}
		b = b[n:]
	}
	return c.ws.feed(b, c)
}

// wsPing answers a ping with a pong of the same payload.
func (c *wconn) wsPing(payload []byte) { c.l.wsSend(c, wsClientFrame(ws.OpPong, payload)) }

// wsClose records the target's close frame and answers it (RFC 6455
// §5.5.1: echo the code) unless the client closed first; the reader then
// ends the connection (errWSClosed).
func (c *wconn) wsClose(code ws.StatusCode, reason []byte) {
	l := c.l
	if l.closeCode == 0 {
		l.closeCode, l.closeReason = int(code), string(reason)
	}
	c.ended = endedFrame
	l.closeFrames.Add(1)
	if !c.closing {
		c.closing = true
		echo := code
		if code == ws.StatusNoStatusRcvd {
			echo = 0
		}
		l.wsSend(c, wsCloseFrame(echo))
	}
}

// wsSend writes a client frame. They are a few bytes and rare (pongs,
// closes), so a full send buffer just drops one: the target's figures are
// not about them.
func (l *loop) wsSend(c *wconn, b []byte) {
	if c.fd >= 0 {
		_, _ = unix.Write(int(c.fd), b)
	}
}

// pause stops reading c: what the target sends piles up in its buffers and
// the small receive window, as for a client that cannot keep up.
func (l *loop) pause(c *wconn) {
	if c.fd < 0 {
		return
	}
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, int(c.fd), nil)
	c.paused = true
}

// resumeAll reads the paused connections again, to see what the target did
// with them: sent everything, dropped some (a gap), or closed them.
func (l *loop) resumeAll() {
	l.resumed = true
	for i := range l.conns {
		c := &l.conns[i]
		if !c.paused || c.fd < 0 {
			continue
		}
		c.paused = false
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, int(c.fd),
			&unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET, Fd: c.slot}); err != nil {
			l.lost(c, fmt.Errorf("epoll_ctl: %w", err))
			continue
		}
		l.read(c)
	}
}

// closeWebSockets ends the worker's WebSocket sessions with a close
// handshake (once their tallies are taken, so these closes are not
// counted), at most the loop's opens-in-flight at a time, as a client
// leaving would: each one is a CLOSE request to the backend. Reset all at
// once instead, 10,000 sessions made Pushpin 1.36 send DISCONNECTs for
// over a minute (and answer new sessions 502 meanwhile), through zurl's
// 2,000 open requests. What is not closed within 3 s of the last close
// is reset with the rest (shut).
func (w *worker) closeWebSockets() {
	var pending []*loop
	for _, l := range w.loops {
		if l.wsc.On {
			l.stop.Store(false)
			pending = append(pending, l)
		}
	}
	if len(pending) == 0 {
		return
	}
	for _, l := range pending {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			l.runClosing()
		}()
	}
	w.wg.Wait()
}

// runClosing runs the loop until every session it closed has ended, or
// nothing ended for 3 s.
func (l *loop) runClosing() {
	last, lastChange := -1, time.Now()
	for !l.stop.Load() {
		l.startCloses()
		if l.closeNext >= len(l.conns) && l.closesDone >= l.closesSent {
			return
		}
		if l.closesDone != last {
			last, lastChange = l.closesDone, time.Now()
		} else if time.Since(lastChange) > 3*time.Second {
			return
		}
		n, err := l.wait()
		if err != nil && err != unix.EINTR {
			return
		}
		for _, ev := range l.events[:max(n, 0)] {
			l.handle(&l.conns[ev.Fd], ev.Events)
		}
	}
}

// startCloses sends close frames (1000) to held sessions, at most
// maxInflight unanswered at a time. Paused sessions are left to shut.
func (l *loop) startCloses() {
	for l.closesSent-l.closesDone < l.maxInflight && l.closeNext < len(l.conns) {
		c := &l.conns[l.closeNext]
		l.closeNext++
		if c.state != stHeld || c.fd < 0 || c.closing || c.paused {
			continue
		}
		c.closing = true
		l.closesSent++
		l.wsSend(c, wsCloseFrame(1000))
	}
}
