package proxy

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/proto/zhttp"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

// stream is one direction of a zhttp session that we send on: toward the
// connection manager (we are the server) or toward zurl (we are the
// client). Its out-seq is assigned by the writer goroutine at the moment
// the packet is written, so packets queued by the session goroutine and
// keep-alives batched by the ticker can never go out of seq order.
type stream struct {
	id string
	// to is the receiver's instance id (PUB prefix / ROUTER identity); for
	// a zurl stream it is learnt from zurl's first reply and set before ka
	// is enabled.
	to    string
	multi bool // the receiver announced ext.multi: list-form keep-alives allowed

	outSeq  atomic.Int64 // next seq to send; written by the writer only
	lastOut atomic.Int64 // unix ns of the last packet written (keep-alive clock)
	lastIn  atomic.Int64 // unix ns of the last packet received (expiry clock)
	ka      atomic.Bool  // include in keep-alive rounds

	closed bool // owned by the writer: a final packet went out
}

func newStream(id, to string, now int64) *stream {
	st := &stream{id: id, to: to}
	st.lastOut.Store(now)
	st.lastIn.Store(now)
	return st
}

// outItem is one unit of work for a writer.
type outItem struct {
	st    *stream
	pkt   zhttp.Packet
	push  bool      // first packet of an outbound request: PUSH instead of ROUTER
	final bool      // nothing more may be written for st after this packet
	batch []*stream // list-form keep-alive for these streams (same receiver)
}

// writer owns the sockets of one outgoing link: the PUB toward the
// connection manager, or the PUSH + ROUTER pair toward zurl. Only its
// goroutine touches them and the streams' out-seq.
type writer struct {
	from   string
	q      chan outItem
	pub    *zmq.Socket // condure link
	push   *zmq.Socket // zurl link: first packets
	router *zmq.Socket // zurl link: later packets
	log    zerolog.Logger
	buf    []byte
}

func newWriter(from string, queue int, log zerolog.Logger) *writer {
	return &writer{from: from, q: make(chan outItem, queue), log: log, buf: make([]byte, 0, 64<<10)}
}

// enqueue hands an item to the writer; it gives up when ctx ends.
func (w *writer) enqueue(ctx context.Context, it outItem) {
	select {
	case w.q <- it:
	case <-ctx.Done():
	}
}

func (w *writer) run(ctx context.Context) {
	defer func() {
		for _, s := range []*zmq.Socket{w.pub, w.push, w.router} {
			if s != nil {
				s.Close()
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			w.drain()
			return
		case it := <-w.q:
			w.write(ctx, &it)
		}
	}
}

// drain writes what is already queued (final responses, cancels), briefly.
func (w *writer) drain() {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	for {
		select {
		case it := <-w.q:
			w.write(ctx, &it)
		default:
			return
		}
	}
}

func (w *writer) write(ctx context.Context, it *outItem) {
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
		w.emit(ctx, it.batch[0].to, &p, false)
		return
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
	w.emit(ctx, st.to, p, it.push)
}

func (w *writer) emit(ctx context.Context, to string, p *zhttp.Packet, push bool) {
	var sock *zmq.Socket
	var frames [][]byte
	switch {
	case w.pub != nil:
		w.buf = p.AppendPub(w.buf[:0], to)
		sock, frames = w.pub, [][]byte{w.buf}
	case push:
		w.buf = p.AppendMessage(w.buf[:0])
		sock, frames = w.push, [][]byte{w.buf}
	default:
		w.buf = p.AppendMessage(w.buf[:0])
		sock, frames = w.router, [][]byte{[]byte(to), nil, w.buf}
	}
	for {
		err := sock.Send(frames...)
		if err == nil {
			w.log.Trace().Str("to", to).Str("id", p.ID).Int64("seq", p.Seq).Str("type", string(p.Type)).Int("body", len(p.Body)).Msg("sent")
			return
		}
		if errors.Is(err, zmq.ErrTimeout) && ctx.Err() == nil {
			continue // HWM reached or no peer yet: wait, keep order
		}
		w.log.Warn().Err(err).Str("to", to).Str("id", p.ID).Str("type", string(p.Type)).Msg("dropping packet")
		return
	}
}
