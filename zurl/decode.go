package zurl

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"io"
	"strings"
	"sync"
)

// Content coding, as BEHAVIOUR.md explains: when the requester sent no
// Accept-Encoding (Pushpin's proxy always strips the client's), zurl owns
// the coding like libcurl does for zurl: it offers what it can decode and
// hands the requester a decoded body, with Content-Encoding and
// Content-Length removed so the headers describe the body sent. When the
// requester did send Accept-Encoding, bodies pass through untouched.

// acceptEncoding is offered to backends when the requester sent none.
const acceptEncoding = "gzip, deflate"

var gzipPool sync.Pool

// decodeBody wraps body when its Content-Encoding is one we decode. It
// returns the reader to pump, a release func, and whether it decodes.
func decodeBody(encoding string, body io.Reader) (io.Reader, func(), bool) {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "gzip", "x-gzip":
		g := &lazyGzip{src: body}
		return g, g.release, true
	case "deflate":
		return &lazyDeflate{src: body}, func() {}, true
	}
	return body, func() {}, false
}

// lazyGzip starts decoding at the first Read, so the response head goes
// out before any body byte has arrived.
type lazyGzip struct {
	src io.Reader
	zr  *gzip.Reader
	err error
}

func (l *lazyGzip) Read(p []byte) (int, error) {
	if l.zr == nil && l.err == nil {
		if zr, ok := gzipPool.Get().(*gzip.Reader); ok {
			if l.err = zr.Reset(l.src); l.err == nil {
				l.zr = zr
			}
		} else {
			l.zr, l.err = gzip.NewReader(l.src)
		}
		if l.err == io.EOF {
			l.err = io.ErrUnexpectedEOF
		}
	}
	if l.err != nil {
		return 0, l.err
	}
	return l.zr.Read(p)
}

func (l *lazyGzip) release() {
	if l.zr != nil {
		gzipPool.Put(l.zr)
		l.zr = nil
	}
}

// lazyDeflate decodes HTTP "deflate": zlib-wrapped as the RFC says, or raw
// deflate as some servers send it (libcurl accepts both).
type lazyDeflate struct {
	src io.Reader
	r   io.Reader
	err error
}

func (l *lazyDeflate) Read(p []byte) (int, error) {
	if l.r == nil && l.err == nil {
		br := bufio.NewReader(l.src)
		h, err := br.Peek(2)
		switch {
		case err != nil:
			l.err = io.ErrUnexpectedEOF
		case h[0]&0x0f == 8 && (uint16(h[0])<<8|uint16(h[1]))%31 == 0:
			l.r, l.err = zlib.NewReader(br)
		default:
			l.r = flate.NewReader(br)
		}
	}
	if l.err != nil {
		return 0, l.err
	}
	return l.r.Read(p)
}
