package proxy

import "github.com/pushpin-go/pushpin/proto/zhttp"

// wsBackend is the backend side of a WebSocket session: a WebSocket to the
// backend through zurl (passthrough, wspass.go) or WebSocket-over-HTTP
// requests through zurl. Every method runs under the session's lock, on
// whichever goroutine handles the session's event; a backend has no
// goroutine of its own.
//
// A backend reports to its session through the session's bk* methods:
// bkConnected (the handshake succeeded), bkFailed (it did not: the
// session tries the next target or rejects the client), bkFrame (a frame
// for the client), bkClosed (the backend closed), bkGone (it vanished
// without a close).
type wsBackend interface {
	// start opens the backend connection with the session's request.
	start()
	// writable reports whether frames can be sent (connected, not closing).
	writable() bool
	// room is how many content bytes the backend takes now.
	room() int64
	// send sends one frame that room allowed; it returns how many bytes
	// the client may be credited for it now (WOH credits later, through
	// the session's cCredit).
	send(f wsFrame) int
	// close sends our close (code -1: none), once; the backend's close
	// reply comes through bkClosed.
	close(code int, reason []byte)
	// gone: the client vanished without a close (passthrough: a close
	// 1001; WOH: DISCONNECT); the backend reports its end with bkClosed or
	// by ending.
	gone()
	// detach drops the backend side for good (grip.md §10.2 detach).
	detach()
	// credit gives back n bytes of the backend's frames that reached the
	// client (or were dropped): the backend may send that much more.
	credit(n int)
	// abort ends the backend connection at once (passthrough: cancel; WOH:
	// DISCONNECT), unless it already ended.
	abort()
	// ended reports whether the backend connection is over.
	ended() bool
	// onZurl takes a packet zurl sent for one of the backend's request ids
	// (registered in Proxy.wsZ).
	onZurl(p *zhttp.Packet)
	// refresh is the handler's `refresh` command: WOH makes a request now.
	refresh()
	// due is when the backend wants tick called (unix ns), 0 for never.
	due() int64
	// tick runs the backend's timers (WOH keep-alive, retries).
	tick(now int64)
	// expired is called when zurl sent nothing on the backend's stream for
	// the expiry time.
	expired()
}
