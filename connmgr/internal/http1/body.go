package http1

import (
	"bytes"
)

// maxChunkLine bounds a chunk-size line (with extensions) and each trailer line.
const maxChunkLine = 4096

// maxTrailers bounds the trailer section of a chunked body.
const maxTrailers = 8192

// BodyDecoder turns the bytes after a request head into body data without
// copying: Decode returns sub-slices of its input. The zero value decodes
// an empty body.
type BodyDecoder struct {
	remaining int64 // Content-Length bytes left, or bytes left in the chunk
	chunked   bool
	state     chunkState
	trailer   int // trailer bytes seen
	done      bool
}

type chunkState uint8

const (
	chunkSize chunkState = iota
	chunkData
	chunkDataEnd
	chunkTrailer
)

// NewBodyDecoder returns the decoder for r's body.
func NewBodyDecoder(r *Request) BodyDecoder {
	switch {
	case r.Chunked:
		return BodyDecoder{chunked: true}
	case r.ContentLength > 0:
		return BodyDecoder{remaining: r.ContentLength}
	}
	return BodyDecoder{done: true}
}

// Done reports whether the whole body has been decoded.
func (d *BodyDecoder) Done() bool { return d.done }

// Decode consumes framing from in and returns the next span of body data
// (a sub-slice of in, possibly empty) and how many bytes of in were used.
// Call again with in[n:] while n > 0 and the body is not Done; n == 0 with
// a nil error means more input is needed.
func (d *BodyDecoder) Decode(in []byte) (data []byte, n int, err error) {
	for !d.done {
		if !d.chunked || d.state == chunkData {
			if len(in[n:]) == 0 {
				return nil, n, nil
			}
			k := int64(len(in) - n)
			if k > d.remaining {
				k = d.remaining
			}
			data = in[n : n+int(k)]
			n += int(k)
			d.remaining -= k
			if d.remaining == 0 {
				if d.chunked {
					d.state = chunkDataEnd
				} else {
					d.done = true
				}
			}
			return data, n, nil
		}
		rest := in[n:]
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			if len(rest) > maxChunkLine {
				return nil, n, bad("chunk line too long")
			}
			return nil, n, nil
		}
		line := rest[:i]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		switch d.state {
		case chunkSize:
			size, err := parseChunkSize(line)
			if err != nil {
				return nil, n, err
			}
			n += i + 1
			if size == 0 {
				d.state = chunkTrailer
			} else {
				d.remaining, d.state = size, chunkData
			}
		case chunkDataEnd:
			if len(line) != 0 {
				return nil, n, bad("chunk data not followed by CRLF")
			}
			n += i + 1
			d.state = chunkSize
		case chunkTrailer:
			n += i + 1
			d.trailer += i + 1
			if d.trailer > maxTrailers {
				return nil, n, bad("chunked trailers too large")
			}
			if len(line) == 0 {
				d.done = true
			}
		}
	}
	return nil, n, nil
}

func parseChunkSize(line []byte) (int64, error) {
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimRight(line, " \t")
	if len(line) == 0 || len(line) > 15 {
		return 0, bad("invalid chunk size")
	}
	var v int64
	for _, c := range line {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | int64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | int64(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | int64(c-'A'+10)
		default:
			return 0, bad("invalid chunk size")
		}
	}
	return v, nil
}
