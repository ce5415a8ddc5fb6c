package http1

import (
	"strconv"
	"strings"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// Framing is how a response body is delimited on the wire.
type Framing uint8

// Framings.
const (
	// FrameNone: the response has no body (1xx, 204, 304, HEAD).
	FrameNone Framing = iota
	// FrameLength: Content-Length.
	FrameLength
	// FrameChunked: Transfer-Encoding: chunked (HTTP/1.1).
	FrameChunked
	// FrameClose: the body ends when the connection closes (HTTP/1.0).
	FrameClose
)

// Plan is the framing decided for one response.
type Plan struct {
	Framing Framing
	// Length is the Content-Length written (FrameLength, or FrameNone for a
	// HEAD response that still advertises a length).
	Length    int64
	HasLength bool
	// KeepAlive: the connection persists after this response.
	KeepAlive bool
	// NoBody: write no body bytes at all (HEAD, 1xx/204/304).
	NoBody bool
}

// PlanResponse applies condure's rules (zhttp.md §5.1) to the first
// response packet: the server's Content-Length wins; else a complete first
// packet gets Content-Length; else chunked on 1.1 and close-delimited on 1.0.
// 1xx/204/304 never have a body or length; HEAD has none either.
func PlanResponse(req *Request, code int, hdrs zhttp.Headers, more bool, bodyLen int) Plan {
	p := Plan{KeepAlive: req.KeepAlive}
	if code < 200 || code == 204 || code == 304 {
		p.Framing, p.NoBody = FrameNone, true
		return p
	}
	if cl := hdrs.Get("Content-Length"); cl != "" {
		if v, err := parseLength(strings.TrimSpace(cl)); err == nil {
			p.Framing, p.Length, p.HasLength = FrameLength, v, true
		}
	}
	if !p.HasLength {
		switch {
		case !more:
			p.Framing, p.Length, p.HasLength = FrameLength, int64(bodyLen), true
		case req.Minor >= 1:
			p.Framing = FrameChunked
		default:
			p.Framing, p.KeepAlive = FrameClose, false
		}
	}
	if req.Method == "HEAD" {
		p.NoBody = true
	}
	return p
}

// dropped are the headers condure computes itself.
func dropped(name string) bool {
	return strings.EqualFold(name, "Connection") || strings.EqualFold(name, "Content-Length") ||
		strings.EqualFold(name, "Transfer-Encoding")
}

// AppendHead appends the status line and headers: the server's headers in
// order (minus Connection/Content-Length/Transfer-Encoding), then the
// persistence header, then the framing headers, as condure orders them.
func AppendHead(dst []byte, req *Request, code int, reason string, hdrs zhttp.Headers, p Plan) []byte {
	if req.Minor >= 1 {
		dst = append(dst, "HTTP/1.1 "...)
	} else {
		dst = append(dst, "HTTP/1.0 "...)
	}
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, ' ')
	dst = appendClean(dst, reason)
	dst = append(dst, "\r\n"...)
	for _, h := range hdrs {
		if dropped(h.Name) {
			continue
		}
		dst = appendClean(dst, h.Name)
		dst = append(dst, ": "...)
		dst = appendClean(dst, h.Value)
		dst = append(dst, "\r\n"...)
	}
	switch {
	case req.Minor >= 1 && !p.KeepAlive:
		dst = append(dst, "Connection: close\r\n"...)
	case req.Minor == 0 && p.KeepAlive:
		dst = append(dst, "Connection: keep-alive\r\n"...)
	}
	switch {
	case p.HasLength && (p.Framing == FrameLength):
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, p.Length, 10)
		dst = append(dst, "\r\n"...)
	case p.Framing == FrameChunked:
		dst = append(dst, "Connection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// appendClean drops CR and LF so that a server-supplied header cannot
// split the response.
func appendClean(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '\r' && c != '\n' {
			dst = append(dst, c)
		}
	}
	return dst
}

// AppendChunkHeader appends the size line of a chunk of n bytes (n > 0).
func AppendChunkHeader(dst []byte, n int) []byte {
	dst = strconv.AppendInt(dst, int64(n), 16)
	return append(dst, "\r\n"...)
}

// CRLF ends a chunk; LastChunk ends a chunked body.
var (
	CRLF      = []byte("\r\n")
	LastChunk = []byte("0\r\n\r\n")
)

// AppendError appends a complete short plain-text response for a refused
// request, ending the connection.
func AppendError(dst []byte, minor int, code int, reason, body string) []byte {
	if minor >= 1 {
		dst = append(dst, "HTTP/1.1 "...)
	} else {
		dst = append(dst, "HTTP/1.0 "...)
	}
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, ' ')
	dst = append(dst, reason...)
	dst = append(dst, "\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}
