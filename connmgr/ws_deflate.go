package connmgr

import (
	"bytes"
	"compress/flate"
	"io"
	"strings"
	"sync"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"

	"github.com/pushpin-go/pushpin/connmgr/internal/wsframe"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// permessage-deflate (RFC 7692) as condure offers it (--compression):
// the first acceptable offer is taken (one asking for a server window
// under 15 bits is not), and client_no_context_takeover is echoed. We
// always answer server_no_context_takeover (RFC 7692 §7.1.1.1 lets a
// server do so unasked): each message we send is compressed on its own,
// so the compressor (hundreds of KB) is a pooled one taken for the message
// and an idle compressed session holds none. What the client compresses
// with context takeover needs its last 32 KB of text kept (dict), unless
// it offered client_no_context_takeover. Credits count uncompressed bytes
// both ways.

// wsDeflate is a compressed session's state.
type wsDeflate struct {
	clientNoTakeover bool

	// Server to client, while a message is being compressed.
	zw   *wsflate.Writer
	zout *bytes.Buffer

	// Client to server: a compressed message is collected whole (zin,
	// at most WSMaxMessage), then inflated within the server's credits.
	zin   []byte
	zr    *wsflate.Reader
	fr    io.ReadCloser
	src   bytes.Reader
	op    ws.OpCode
	total int64
	utf8  wsframe.UTF8
	dict  []byte // the client's LZ77 window (context takeover)
}

const deflateWindow = 32 << 10

var (
	deflateWriters = sync.Pool{New: func() any {
		return wsflate.NewWriter(nil, func(w io.Writer) wsflate.Compressor {
			fw, _ := flate.NewWriter(w, flate.BestSpeed)
			return fw
		})
	}}
	deflateReaders = sync.Pool{New: func() any { return flate.NewReader(bytes.NewReader(nil)) }}
	deflateOut     = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

// negotiateDeflate picks the client's first acceptable permessage-deflate
// offer, if any.
func negotiateDeflate(hdrs zhttp.Headers) *wsDeflate {
	for _, v := range hdrs.Values("Sec-WebSocket-Extensions") {
		opts, ok := httphead.ParseOptions([]byte(v), nil)
		if !ok {
			continue
		}
		for _, opt := range opts {
			if !strings.EqualFold(string(opt.Name), wsflate.ExtensionName) {
				continue
			}
			var p wsflate.Parameters
			if err := p.Parse(opt); err != nil {
				continue
			}
			if p.ServerMaxWindowBits.Defined() && p.ServerMaxWindowBits != 15 {
				continue
			}
			return &wsDeflate{clientNoTakeover: p.ClientNoContextTakeover}
		}
	}
	return nil
}

// response is our Sec-WebSocket-Extensions value.
func (z *wsDeflate) response() string {
	if z.clientNoTakeover {
		return "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
	}
	return "permessage-deflate; server_no_context_takeover"
}

// wsWriteCompressed writes a server data packet as one compressed frame
// (RSV1 on a message's first frame). The compressor's sync flush ends
// each frame, so the frames of a message concatenate to one deflate
// stream, whose last four bytes (00 00 ff ff) wsflate strips at the end.
func (x *exchange) wsWriteCompressed(p *zhttp.Packet) outcome {
	w, z := x.ws, x.ws.defl
	first, fin := !w.outMsg, !p.More
	if first {
		z.zw = deflateWriters.Get().(*wsflate.Writer)
		z.zout = deflateOut.Get().(*bytes.Buffer)
		z.zw.Reset(z.zout)
	}
	_, err := z.zw.Write(p.Body)
	if err == nil {
		err = z.zw.Flush()
	}
	if err != nil {
		x.s.log.Warn().Str("id", x.ss.id).Err(err).Msg("compressing")
		x.cancel()
		return abort
	}
	payload := z.zout.Bytes()
	var hb [wsframe.MaxHeaderSize]byte
	all, err := x.c.send([][]byte{wsframe.AppendHeader(hb[:0], fin, first, dataOp(p, !first), len(payload)), payload})
	z.zout.Reset()
	w.outMsg = !fin
	if fin {
		z.releaseWriter()
	}
	return x.wsWritten(all, err, int64(len(p.Body)))
}

func (z *wsDeflate) releaseWriter() {
	if z.zw == nil {
		return
	}
	deflateWriters.Put(z.zw)
	if z.zout.Cap() <= 64<<10 {
		z.zout.Reset()
		deflateOut.Put(z.zout)
	}
	z.zw, z.zout = nil, nil
}

// wsCollect adds a piece of a compressed client message; at its end,
// inflating starts.
func (x *exchange) wsCollect(f *wsframe.Frame) outcome {
	z := x.ws.defl
	if len(z.zin) == 0 {
		z.op = f.Op
	}
	z.zin = append(z.zin, f.Payload...)
	if !f.End {
		return goOn
	}
	z.fr = deflateReaders.Get().(io.ReadCloser)
	z.src.Reset(z.zin)
	z.total, z.utf8 = 0, wsframe.UTF8{}
	dict := z.dict[max(0, len(z.dict)-deflateWindow):]
	z.zr = wsflate.NewReader(&z.src, func(r io.Reader) wsflate.Decompressor {
		_ = z.fr.(flate.Resetter).Reset(r, dict)
		return z.fr
	})
	return goOn
}

func (z *wsDeflate) inflating() bool { return z.zr != nil }

// wsInflate passes the inflated message on within the server's credits;
// done once all of it went.
func (x *exchange) wsInflate() (outcome, bool) {
	z := x.ws.defl
	bp := x.s.bufs.Get().(*[]byte)
	defer x.s.bufs.Put(bp)
	for {
		if x.ss.to == "" || x.ss.handoff || x.credits <= 0 {
			return goOn, false
		}
		buf := (*bp)[:min(int64(len(*bp)), x.credits)]
		n, err := io.ReadFull(z.zr, buf)
		eof := err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !eof {
			return x.wsFail(&wsframe.Error{Code: ws.StatusInvalidFramePayloadData, Reason: "bad compressed data"}), false
		}
		out := buf[:n]
		z.total += int64(n)
		if z.total > x.s.cfg.WSMaxMessage {
			return x.wsFail(wsframe.ErrTooBig), false
		}
		if z.op == ws.OpText && (!z.utf8.Write(out) || eof && !z.utf8.Done()) {
			return x.wsFail(wsframe.ErrInvalidUTF8), false
		}
		if !z.clientNoTakeover {
			z.keepWindow(out)
		}
		if n > 0 || eof {
			x.wsSend(&zhttp.Packet{ContentType: contentType(z.op), Body: out, More: !eof})
		}
		if eof {
			z.endInflate()
			return goOn, true
		}
	}
}

// keepWindow keeps (at least) the last 32 KB the client's compressor
// may refer to, in at most 64 KB.
func (z *wsDeflate) keepWindow(out []byte) {
	z.dict = append(z.dict, out...)
	if len(z.dict) > 2*deflateWindow {
		z.dict = append(z.dict[:0], z.dict[len(z.dict)-deflateWindow:]...)
	}
}

func (z *wsDeflate) endInflate() {
	if z.fr != nil {
		deflateReaders.Put(z.fr)
	}
	z.fr, z.zr = nil, nil
	z.src.Reset(nil)
	if cap(z.zin) > 64<<10 {
		z.zin = nil
	} else {
		z.zin = z.zin[:0]
	}
}

// release gives back what a session ending mid-message holds.
func (z *wsDeflate) release() {
	z.releaseWriter()
	z.endInflate()
	z.zin = nil
}
