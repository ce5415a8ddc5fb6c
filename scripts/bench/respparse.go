package main

import (
	"bytes"
	"errors"
	"fmt"
)

// respParser decodes one held HTTP/1.1 response as its bytes arrive, in
// whatever pieces the socket gives them: status line and headers, then a
// chunked (or, without Transfer-Encoding, identity) body cut into lines. It
// keeps at most one partial line per connection and allocates nothing once
// the head is read, so 100,000 of them stay cheap.
type respParser struct {
	head     []byte // while reading the head only
	upgrade  bool   // a WebSocket handshake: 101 wanted, then frames (wsReader)
	phase    uint8
	chunked  bool
	cs       uint8 // chunk decoder state
	overflow bool  // current line exceeds lineMax: dropped
	lineLen  uint8
	crem     int64 // chunk size being read, then bytes left in the chunk
	line     [lineMax]byte
}

// lineSink receives the body's lines, without their "\n".
type lineSink interface{ bodyLine(line []byte) }

const (
	lineMax = 96   // our messages are ~40 bytes; longer lines are not ours
	headMax = 8192 // a response head beyond this is not a target's hold
)

// Parser phases; the zero value is the head.
const (
	phHead uint8 = iota
	phBody
	phEnd
)

// Chunk decoder states.
const (
	csSize uint8 = iota
	csExt
	csSizeLF
	csData
	csDataCR
	csDataLF
	csTrailer     // at the start of a trailer line
	csTrailerLine // inside a non-empty trailer line
	csTrailerLF   // "\r" of the final empty line seen
)

var (
	// errStreamEnd is the last chunk: the target ended the response.
	errStreamEnd = errors.New("response ended by the target")
	errBadHead   = errors.New("malformed response head")
	errBadChunk  = errors.New("malformed chunked body")
)

// statusError is a response other than 200.
type statusError struct{ code int }

func (e statusError) Error() string { return fmt.Sprintf("status %d", e.code) }

// feed consumes the next bytes of the response. It returns errStreamEnd
// after the last chunk, or a decoding error; bytes after that are ignored.
func (p *respParser) feed(b []byte, sink lineSink) error {
	if p.phase == phHead {
		n, err := p.feedHead(b)
		if err != nil || p.phase == phHead {
			return err
		}
		b = b[n:]
	}
	if p.phase == phEnd {
		return errStreamEnd
	}
	if !p.chunked {
		p.text(b, sink)
		return nil
	}
	return p.feedChunked(b, sink)
}

// feedHead buffers the head until its empty line, then checks it; it
// returns how many bytes of b belonged to the head.
func (p *respParser) feedHead(b []byte) (int, error) {
	from := max(len(p.head)-3, 0)
	p.head = append(p.head, b...)
	i := bytes.Index(p.head[from:], []byte("\r\n\r\n"))
	if i < 0 {
		if len(p.head) > headMax {
			return 0, fmt.Errorf("%w: no end within %d bytes", errBadHead, headMax)
		}
		return 0, nil
	}
	end := from + i + 4
	used := end - (len(p.head) - len(b))
	head := p.head[:end]
	p.head = nil
	code, chunked, err := parseHead(head)
	if err != nil {
		return 0, err
	}
	if p.upgrade {
		if code != 101 {
			return 0, statusError{code}
		}
		if err := checkUpgrade(head); err != nil {
			return 0, err
		}
		p.phase = phBody
		return used, nil
	}
	if code != 200 {
		return 0, statusError{code}
	}
	p.chunked, p.phase = chunked, phBody
	return used, nil
}

// parseHead reads the status code and whether the body is chunked.
func parseHead(head []byte) (code int, chunked bool, err error) {
	status, rest, _ := bytes.Cut(head, []byte("\r\n"))
	if len(status) < 12 || !bytes.HasPrefix(status, []byte("HTTP/1.")) || status[8] != ' ' {
		return 0, false, fmt.Errorf("%w: status line %q", errBadHead, status)
	}
	for _, c := range status[9:12] {
		if c < '0' || c > '9' {
			return 0, false, fmt.Errorf("%w: status line %q", errBadHead, status)
		}
		code = code*10 + int(c-'0')
	}
	for len(rest) > 0 {
		var h []byte
		h, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(h, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("transfer-encoding")) {
			chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
		}
	}
	return code, chunked, nil
}

func (p *respParser) feedChunked(b []byte, sink lineSink) error {
	for len(b) > 0 {
		if p.cs == csData {
			n := int(min(p.crem, int64(len(b))))
			p.text(b[:n], sink)
			b = b[n:]
			if p.crem -= int64(n); p.crem == 0 {
				p.cs = csDataCR
			}
			continue
		}
		c := b[0]
		b = b[1:]
		switch p.cs {
		case csSize:
			switch {
			case c >= '0' && c <= '9':
				p.crem = p.crem<<4 | int64(c-'0')
			case c >= 'a' && c <= 'f':
				p.crem = p.crem<<4 | int64(c-'a'+10)
			case c >= 'A' && c <= 'F':
				p.crem = p.crem<<4 | int64(c-'A'+10)
			case c == ';' || c == ' ' || c == '\t':
				p.cs = csExt
			case c == '\r':
				p.cs = csSizeLF
			case c == '\n':
				p.endSize()
			default:
				return fmt.Errorf("%w: %q in chunk size", errBadChunk, c)
			}
			if p.crem > 1<<40 {
				return fmt.Errorf("%w: chunk size too large", errBadChunk)
			}
		case csExt:
			if c == '\n' {
				p.endSize()
			}
		case csSizeLF:
			if c != '\n' {
				return fmt.Errorf("%w: %q after chunk size", errBadChunk, c)
			}
			p.endSize()
		case csDataCR:
			switch c {
			case '\r':
				p.cs = csDataLF
			case '\n':
				p.cs = csSize
			default:
				return fmt.Errorf("%w: %q after chunk data", errBadChunk, c)
			}
		case csDataLF:
			if c != '\n' {
				return fmt.Errorf("%w: %q after chunk data", errBadChunk, c)
			}
			p.cs = csSize
		case csTrailer:
			switch c {
			case '\r':
				p.cs = csTrailerLF
			case '\n':
				p.phase = phEnd
				return errStreamEnd
			default:
				p.cs = csTrailerLine
			}
		case csTrailerLine:
			if c == '\n' {
				p.cs = csTrailer
			}
		case csTrailerLF:
			if c != '\n' {
				return fmt.Errorf("%w: %q after trailer", errBadChunk, c)
			}
			p.phase = phEnd
			return errStreamEnd
		}
	}
	return nil
}

// endSize starts the chunk whose size line just ended; size 0 is the last.
func (p *respParser) endSize() {
	if p.crem == 0 {
		p.cs = csTrailer
		return
	}
	p.cs = csData
}

// text cuts body bytes into lines. A line that arrives whole is handed to
// the sink straight from b; only a line split across reads is copied.
// Lines longer than lineMax are dropped however they arrive.
func (p *respParser) text(b []byte, sink lineSink) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.keep(b)
			return
		}
		switch {
		case p.overflow:
		case p.lineLen == 0:
			if i <= lineMax {
				sink.bodyLine(b[:i])
			}
		default:
			p.keep(b[:i])
			if !p.overflow {
				sink.bodyLine(p.line[:p.lineLen])
			}
		}
		p.lineLen, p.overflow = 0, false
		b = b[i+1:]
	}
}

func (p *respParser) keep(b []byte) {
	if p.overflow {
		return
	}
	if int(p.lineLen)+len(b) > lineMax {
		p.overflow = true
		return
	}
	p.lineLen += uint8(copy(p.line[p.lineLen:], b))
}
