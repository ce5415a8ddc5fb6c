package proxy

import "github.com/pushpin-go/pushpin/proto/zhttp"

// wsKind is what a WebSocket frame carries (zhttp.md §7).
type wsKind uint8

const (
	wsText wsKind = iota
	wsBinary
	wsPing
	wsPong
	// wsClose is a queue marker, not a content frame: send a close (code,
	// reason in data) once everything queued before it went out.
	wsClose
)

// wsFrame is one frame of a WebSocket session on its way from one side to
// the other. A message may be split into several frames (more:true on all
// but the last); only the first one's kind says text or binary, later ones
// have cont set and repeat it.
type wsFrame struct {
	kind wsKind
	cont bool // continuation of a fragmented message
	more bool // more frames of this message follow
	data []byte
	code int // wsClose: the close code, -1 for none
	// credit is how many bytes the backend sent for this frame: given back
	// to the backend once the frame reached the client (its prefix may
	// have been stripped, so it can differ from len(data)).
	credit int
	// reqID is the ws-control request id of a handler `send`: acked once
	// the frame went to the client.
	reqID string
	// msg numbers a message the handler sent to several sessions at once
	// (a multi-send; 0 for any other frame): the sessions whose next frame
	// is the same message get it in one shared packet (wsBatch).
	msg uint64
}

// isContent reports whether f is a text/binary frame (split by credits;
// ping/pong wait for credits whole).
func (f *wsFrame) isContent() bool { return f.kind == wsText || f.kind == wsBinary }

// wsPacket is the zws packet carrying f (either direction).
func wsPacket(f *wsFrame) zhttp.Packet {
	var p zhttp.Packet
	switch f.kind {
	case wsPing:
		p.Type = zhttp.Ping
	case wsPong:
		p.Type = zhttp.Pong
	case wsBinary:
		p.ContentType = "binary"
	default:
		p.ContentType = "text"
	}
	p.Body, p.More = f.data, f.more
	if p.Body == nil {
		p.Body = []byte{}
	}
	return p
}

// closePacket is a zws close with an optional code and reason.
func closePacket(code int, reason []byte) zhttp.Packet {
	p := zhttp.Packet{Type: zhttp.Close}
	if code >= 0 {
		p.Code, p.HasCode = int64(code), true
	}
	if len(reason) > 0 {
		p.Body = reason
	}
	return p
}

// closeOf reads a zws close packet's code (-1 when absent) and reason.
func closeOf(p *zhttp.Packet) (int, []byte) {
	code := -1
	if p.HasCode {
		code = int(p.Code)
	}
	return code, p.Body
}

// kindOf maps a zws data packet's content-type (absent means text).
func kindOf(contentType string) wsKind {
	if contentType == "binary" {
		return wsBinary
	}
	return wsText
}

// wsQueue is a FIFO of frames waiting for the receiving side's credits,
// with its size in content bytes. It never grows past what the peer was
// allowed to send (credits) or, for the handler's messages, the session's
// queue bound (maxWSQueue).
type wsQueue struct {
	q     []wsFrame
	bytes int
}

func (q *wsQueue) push(f wsFrame) {
	q.q = append(q.q, f)
	q.bytes += len(f.data)
}

func (q *wsQueue) empty() bool { return len(q.q) == 0 }

// reset drops everything queued and returns it.
func (q *wsQueue) reset() []wsFrame {
	out := q.q
	q.q, q.bytes = nil, 0
	return out
}

// take returns the next frame that credits allow: a content frame whole
// when the credits cover it, else a piece of it as far as the credits go
// (the rest stays queued as a continuation) but only once they reach
// minPiece; a ping or pong only whole, a close marker always. whole says
// the queued frame is done (its credit and reqID travel with its last
// part).
//
// minPiece keeps pieces large: split at whatever credits a single return
// brought, a message becomes two frames whenever a return falls inside
// it, and returns for those smaller frames cut the next ones smaller
// still, until a steady stream travels a few bytes per packet (seen: 60
// packets per 1 KB message behind an 8 KB window). Half the receiver's
// window is the largest piece that still leaves room for the next one in
// flight.
func (q *wsQueue) take(credits, minPiece int64) (f wsFrame, whole, ok bool) {
	if len(q.q) == 0 {
		return f, false, false
	}
	head := &q.q[0]
	n := int64(len(head.data))
	switch {
	case head.kind == wsClose:
	case !head.isContent():
		if credits < n {
			return f, false, false
		}
	case n > 0 && (credits <= 0 || (n > credits && credits < minPiece)):
		return f, false, false
	case n > credits:
		f = *head
		f.data, f.more, f.credit, f.reqID = head.data[:credits:credits], true, 0, ""
		head.data, head.cont = head.data[credits:], true
		q.bytes -= int(credits)
		return f, false, true
	}
	f = *head
	*head = wsFrame{}
	q.q = q.q[1:]
	if len(q.q) == 0 {
		q.q = nil
	}
	q.bytes -= len(f.data)
	return f, true, true
}
