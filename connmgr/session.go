package connmgr

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// session is one client request carried as a zhttp client session. Its
// handler goroutine (serve) owns all of its state; the SUB loop only hands
// it packets through inbox.
type session struct {
	id    string
	inbox chan *zhttp.Packet
}

// deliver queues a packet; a session that cannot keep up is cut off rather
// than stalling the SUB loop for everyone.
func (ss *session) deliver(p *zhttp.Packet) {
	select {
	case ss.inbox <- p:
	default:
	}
}

type bodyChunk struct {
	b   []byte
	eof bool
	err error
}

// hop-by-hop and framing headers the connection manager computes itself.
func skipHeader(name string) bool {
	switch strings.ToLower(name) {
	case "connection", "content-length", "transfer-encoding", "keep-alive":
		return true
	}
	return false
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		// WebSockets are the next piece of work.
		http.Error(w, "WebSocket not supported yet.", http.StatusNotImplemented)
		return
	}
	ss := &session{id: fmt.Sprintf("0-0-%x", s.nextID.Add(1)-1), inbox: make(chan *zhttp.Packet, 256)}
	s.register(ss)
	defer s.unregister(ss)

	host := r.Host
	if host == "" {
		host = "localhost"
	}
	hdrs := make(zhttp.Headers, 0, len(r.Header)+1)
	if r.Host != "" {
		hdrs = append(hdrs, zhttp.Header{Name: "Host", Value: r.Host})
	}
	for name, vals := range r.Header {
		for _, v := range vals {
			hdrs = append(hdrs, zhttp.Header{Name: name, Value: v})
		}
	}
	if len(r.TransferEncoding) > 0 {
		hdrs = append(hdrs, zhttp.Header{Name: "Transfer-Encoding", Value: strings.Join(r.TransferEncoding, ", ")})
	}
	hasBody := r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	peerAddr, peerPort := "", int64(0)
	if h, p, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		peerAddr = h
		peerPort, _ = strconv.ParseInt(p, 10, 64)
	}
	first := zhttp.Packet{From: s.cfg.ID, ID: ss.id, HasSeq: true, Seq: 0, Ext: zhttp.Ext{Multi: true},
		Method: r.Method, URI: "http://" + host + r.RequestURI, Headers: hdrs, HasHeaders: true,
		Credits: int64(s.cfg.BufferSize), HasCredits: true, More: hasBody, Stream: true,
		PeerAddress: peerAddr, PeerPort: peerPort}
	s.push.Send(first.AppendMessage(nil))

	var (
		outSeq, inSeq   int64  = 1, 0
		to              string // identity of the server now owning the session
		credits         int64  // request body bytes the server can take
		started         bool
		lastIn, lastOut = time.Now(), time.Now()
		pending         []byte
		bodyEOF         = !hasBody
		bodyCh          chan bodyChunk
		flusher, _      = w.(http.Flusher)
	)
	send := func(p *zhttp.Packet) {
		p.From, p.ID, p.HasSeq, p.Seq = s.cfg.ID, ss.id, true, outSeq
		p.Ext.Multi = true
		outSeq++
		lastOut = time.Now()
		s.sendLater(to, p)
	}
	if hasBody {
		bodyCh = make(chan bodyChunk, 1)
		go func() {
			for {
				buf := make([]byte, 16*1024)
				n, err := r.Body.Read(buf)
				if n > 0 {
					bodyCh <- bodyChunk{b: buf[:n]}
				}
				if err != nil {
					if err == io.EOF {
						bodyCh <- bodyChunk{eof: true}
					} else {
						bodyCh <- bodyChunk{err: err}
					}
					return
				}
			}
		}()
	}
	flushBody := func() {
		for to != "" && (len(pending) > 0 && credits > 0 || bodyEOF && len(pending) == 0 && !sentEOF(&first)) {
			n := min(int64(len(pending)), credits)
			part := pending[:n]
			pending = pending[n:]
			credits -= n
			last := bodyEOF && len(pending) == 0
			p := &zhttp.Packet{Body: append([]byte{}, part...), More: !last}
			send(p)
			if last {
				first.More = false // marks the request body as fully sent
				return
			}
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	ctx := r.Context()
	for {
		var bc <-chan bodyChunk
		if bodyCh != nil && len(pending) < 64*1024 && !bodyEOF {
			bc = bodyCh
		}
		select {
		case <-ctx.Done():
			if to != "" {
				send(&zhttp.Packet{Type: zhttp.Cancel})
			}
			return
		case c := <-bc:
			if c.err != nil {
				if to != "" {
					send(&zhttp.Packet{Type: zhttp.Cancel})
				}
				return
			}
			pending = append(pending, c.b...)
			if c.eof {
				bodyEOF = true
			}
			flushBody()
		case now := <-tick.C:
			if now.Sub(lastIn) > s.cfg.Expiry {
				s.log.Debug().Str("id", ss.id).Msg("session timed out")
				if !started {
					http.Error(w, "Gateway timeout.", http.StatusGatewayTimeout)
					return
				}
				panic(http.ErrAbortHandler)
			}
			if to != "" && now.Sub(lastOut) >= s.cfg.KeepAlive {
				send(&zhttp.Packet{Type: zhttp.KeepAlive})
			}
		case p := <-ss.inbox:
			lastIn = time.Now()
			if p.Type == zhttp.Cancel || p.Type == zhttp.Error {
				if !started {
					if p.Type == zhttp.Error && p.Condition == "rejected" && p.HasCode {
						writeHead(w, p, r)
						_, _ = w.Write(p.Body)
						return
					}
					http.Error(w, "Bad Gateway.", http.StatusBadGateway)
					return
				}
				panic(http.ErrAbortHandler)
			}
			if p.HasSeq && p.Seq != inSeq {
				s.log.Warn().Str("id", ss.id).Int64("seq", p.Seq).Int64("want", inSeq).Msg("out of sequence packet")
				if to != "" {
					send(&zhttp.Packet{Type: zhttp.Cancel})
				}
				panic(http.ErrAbortHandler)
			}
			inSeq++
			if p.From != "" {
				to = p.From // later packets go to the most recent sender
			}
			credits += p.Credits
			switch p.Type {
			case zhttp.HandoffStart:
				send(&zhttp.Packet{Type: zhttp.HandoffProceed})
				continue
			case zhttp.Data:
			default:
				flushBody()
				continue
			}
			if !started {
				if !p.HasCode {
					http.Error(w, "Bad Gateway.", http.StatusBadGateway)
					return
				}
				writeHead(w, p, r)
				started = true
			}
			if len(p.Body) > 0 && r.Method != http.MethodHead {
				if _, err := w.Write(p.Body); err != nil {
					send(&zhttp.Packet{Type: zhttp.Cancel})
					return
				}
			}
			if !p.More {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
			if len(p.Body) > 0 {
				// Credits back for exactly what reached the client socket.
				send(&zhttp.Packet{Type: zhttp.Credit, Credits: int64(len(p.Body)), HasCredits: true})
			}
			flushBody()
		}
	}
}

// sentEOF reports whether the final (no more) request body packet went out;
// first.More is cleared when it does.
func sentEOF(first *zhttp.Packet) bool { return !first.More }

// writeHead writes the status and headers with condure's framing rules
// (zhttp.md §5.1): the server's Content-Length wins; a complete first
// packet gets its own length; otherwise the response is chunked (HTTP/1.1)
// or close-delimited (HTTP/1.0).
func writeHead(w http.ResponseWriter, p *zhttp.Packet, r *http.Request) {
	h := w.Header()
	for _, x := range p.Headers {
		if !skipHeader(x.Name) {
			h.Add(x.Name, x.Value)
		}
	}
	code := int(p.Code)
	if code < 100 || code > 999 {
		code = http.StatusBadGateway
	}
	noBody := code < 200 || code == 204 || code == 304
	if cl := p.Headers.Get("Content-Length"); cl != "" && !noBody {
		h.Set("Content-Length", cl)
	} else if !p.More && !noBody {
		h.Set("Content-Length", strconv.Itoa(len(p.Body)))
	}
	// Send only what the server gave: no Date or sniffed Content-Type.
	if _, ok := h["Date"]; !ok {
		h["Date"] = nil
	}
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil
	}
	w.WriteHeader(code)
}
