package proxy

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/proto/zhttp"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

// stream is one direction of a zhttp session that we send on: toward the
// connection manager (we are the server) or toward zurl (we are the
// client). Its out-seq is assigned under the writer's lock at the moment
// the packet is sent, so a session's packets and the keep-alives batched by
// the ticker can never go out of seq order.
type stream struct {
	id string
	// to is the receiver's instance id (PUB prefix / ROUTER identity); for
	// a zurl stream it is learnt from zurl's first reply and set before ka
	// is enabled.
	to    string
	multi bool // the receiver announced ext.multi: list-form keep-alives allowed

	outSeq  atomic.Int64 // next seq to send; written under the writer's lock only
	lastOut atomic.Int64 // unix ns of the last packet written (keep-alive clock)
	lastIn  atomic.Int64 // unix ns of the last packet received (expiry clock)
	ka      atomic.Bool  // include in keep-alive rounds

	closed bool // guarded by the writer's mu: a final packet went out
	// mid (guarded by the writer's mu) says the last data packet written
	// had more:true: a WebSocket message toward the peer is partly sent,
	// so a shared data packet (writeShared) must not go in between.
	mid bool
}

func newStream(id, to string, now int64) *stream {
	st := &stream{id: id, to: to}
	st.lastOut.Store(now)
	st.lastIn.Store(now)
	return st
}

// outItem is one packet (or keep-alive batch) for a writer.
type outItem struct {
	st    *stream
	pkt   zhttp.Packet
	push  bool      // first packet of an outbound request: PUSH instead of ROUTER
	final bool      // nothing more may be written for st after this packet
	batch []*stream // list-form keep-alive for these streams (same receiver)
}

// writer owns the sockets of one outgoing link: the PUB toward the
// connection manager, or the PUSH + ROUTER pair toward zurl. Whichever
// goroutine has a packet to send encodes and sends it itself under mu (no
// hand-off to a writer goroutine); mu also guards the streams' out-seq and
// closed flags, so seqs leave in order.
type writer struct {
	mu     sync.Mutex
	ctx    context.Context // a send blocked by a full HWM gives up when it ends
	from   string
	pub    *zmq.Socket // condure link
	push   *zmq.Socket // zurl link: first packets
	router *zmq.Socket // zurl link: later packets
	log    zerolog.Logger
	buf    []byte
	frames [3][]byte
	closed bool
}

func newWriter(ctx context.Context, from string, log zerolog.Logger) *writer {
	return &writer{ctx: ctx, from: from, log: log, buf: make([]byte, 0, 64<<10)}
}

// write encodes and sends an item; after close it is dropped.
func (w *writer) write(it *outItem) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.writeLocked(it)
	if cap(w.buf) > 1<<20 {
		w.buf = make([]byte, 0, 64<<10) // a rare huge packet must not stay pinned
	}
}

// close closes the link's sockets once ctx has ended.
func (w *writer) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for _, s := range []*zmq.Socket{w.pub, w.push, w.router} {
		if s != nil {
			s.Close()
		}
	}
}

func (w *writer) writeLocked(it *outItem) {
	now := time.Now().UnixNano()
	if it.batch != nil {
		ids := make([]zhttp.IDSeq, 0, len(it.batch))
		for _, st := range it.batch {
			if st.closed {
				continue
			}
			ids = append(ids, zhttp.IDSeq{ID: st.id, Seq: st.outSeq.Add(1) - 1})
			st.lastOut.Store(now)
		}
		if len(ids) == 0 {
			return
		}
		p := zhttp.Packet{From: w.from, IDs: ids, Type: zhttp.KeepAlive, Ext: zhttp.Ext{Multi: true}}
		w.emit(it.batch[0].to, &p, false)
		return
	}
	if it.pkt.Type == zhttp.Data {
		it.st.mid = it.pkt.More
	}
	st := it.st
	if st.closed {
		return
	}
	p := &it.pkt
	p.From, p.ID, p.HasSeq = w.from, st.id, true
	p.Seq = st.outSeq.Add(1) - 1
	st.lastOut.Store(now)
	if it.final {
		st.closed = true
	}
	w.emit(st.to, p, it.push)
}

// writeShared sends one data packet p to every stream of sts (all toward
// the same receiver, which announced ext.multi-data) with a list-form id,
// each entry with the stream's next seq: a message published to many
// WebSocket sessions is encoded once. A stream that is closed or in the
// middle of a fragmented message cannot take it; those are returned for
// the caller to deliver one by one.
func (w *writer) writeShared(sts []*stream, p zhttp.Packet) (skipped []*stream) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	now := time.Now().UnixNano()
	ids := make([]zhttp.IDSeq, 0, len(sts))
	for _, st := range sts {
		if st.closed || st.mid {
			skipped = append(skipped, st)
			continue
		}
		ids = append(ids, zhttp.IDSeq{ID: st.id, Seq: st.outSeq.Add(1) - 1})
		st.lastOut.Store(now)
	}
	if len(ids) == 0 {
		return skipped
	}
	p.From, p.ID, p.IDs, p.HasSeq = w.from, "", ids, false
	w.emit(sts[0].to, &p, false)
	if cap(w.buf) > 1<<20 {
		w.buf = make([]byte, 0, 64<<10)
	}
	return skipped
}

func (w *writer) emit(to string, p *zhttp.Packet, push bool) {
	var sock *zmq.Socket
	var frames [][]byte
	switch {
	case w.pub != nil:
		w.buf = p.AppendPub(w.buf[:0], to)
		w.frames[0] = w.buf
		sock, frames = w.pub, w.frames[:1]
	case push:
		w.buf = p.AppendMessage(w.buf[:0])
		w.frames[0] = w.buf
		sock, frames = w.push, w.frames[:1]
	default:
		// to, then the encoding, in one buffer: the ROUTER's identity frame
		// costs no allocation.
		w.buf = append(w.buf[:0], to...)
		w.buf = p.AppendMessage(w.buf)
		w.frames[0], w.frames[1], w.frames[2] = w.buf[:len(to)], nil, w.buf[len(to):]
		sock, frames = w.router, w.frames[:3]
	}
	for {
		err := sock.Send(frames...)
		if err == nil {
			w.log.Trace().Str("to", to).Str("id", p.ID).Int64("seq", p.Seq).Str("type", string(p.Type)).Int("body", len(p.Body)).Msg("sent")
			return
		}
		if errors.Is(err, zmq.ErrTimeout) && w.ctx.Err() == nil {
			continue // HWM reached or no peer yet: wait, keep order
		}
		w.log.Warn().Err(err).Str("to", to).Str("id", p.ID).Str("type", string(p.Type)).Msg("dropping packet")
		return
	}
}
