package zurl

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// respHead is a response as pump sends it, from either client.
type respHead struct {
	code     int
	reason   string
	headers  zhttp.Headers // hop-by-hop headers removed
	length   int64         // declared body length, -1 unknown
	encoding string        // Content-Encoding
	body     io.ReadCloser
}

// fromHTTP adapts a net/http response (its header map loses the order, so
// names come sorted: responseHeaders).
func fromHTTP(resp *http.Response) *respHead {
	return &respHead{code: resp.StatusCode, reason: reason(resp), headers: responseHeaders(resp),
		length: resp.ContentLength, encoding: resp.Header.Get("Content-Encoding"), body: resp.Body}
}

// maxHead bounds a response head (status line and headers).
const maxHead = 1 << 20

var errMalformed = errors.New("zurl: malformed HTTP response")

// readHead parses a response head from br the way http.ReadResponse does
// (the same errors for the same inputs, the same body framing), but into
// the zhttp header list directly and in the backend's order and case, as
// zurl's libcurl passes them; the map, canonical names and the sorting
// cost a tenth of the lean client's CPU. The body reader frames the body;
// reuse says whether the connection can carry another request after it.
func readHead(br *bufio.Reader, head bool) (r *respHead, reuse bool, err error) {
	var budget = maxHead
	line, err := readLine(br, &budget)
	if err != nil {
		return nil, false, err
	}
	proto, status, ok := strings.Cut(line, " ")
	if !ok {
		return nil, false, fmt.Errorf("%w: %q", errMalformed, line)
	}
	status = strings.TrimLeft(status, " ")
	codeStr, rest, hasReason := strings.Cut(status, " ")
	code, err := strconv.Atoi(codeStr)
	if len(codeStr) != 3 || err != nil || code < 0 {
		return nil, false, fmt.Errorf("%w: status code %q", errMalformed, codeStr)
	}
	major, minor, ok := http.ParseHTTPVersion(proto)
	if !ok {
		return nil, false, fmt.Errorf("%w: version %q", errMalformed, proto)
	}
	r = &respHead{code: code, length: -1}
	if hasReason {
		r.reason = rest
	} else {
		r.reason = http.StatusText(code)
	}
	// Small backing arrays: a response has one Content-Length at most,
	// rarely the others.
	var clb, teb, connb [2]string
	cl, te, conn := clb[:0], teb[:0], connb[:0]
	err = readFields(br, &budget, func(name, value string) {
		switch {
		case strings.EqualFold(name, "Content-Length"):
			cl = append(cl, value)
		case strings.EqualFold(name, "Transfer-Encoding"):
			te = append(te, value)
		case strings.EqualFold(name, "Connection"):
			conn = append(conn, value)
		case strings.EqualFold(name, "Content-Encoding") && r.encoding == "":
			r.encoding = value
		}
		if !hopHeader(name) {
			if r.headers == nil {
				r.headers = make(zhttp.Headers, 0, 16)
			}
			r.headers = append(r.headers, zhttp.Header{Name: name, Value: value})
		}
	})
	if err != nil {
		return nil, false, err
	}
	chunked := false
	if len(te) > 0 && (major > 1 || major == 1 && minor >= 1) { // HTTP/1.0 has no Transfer-Encoding (net/http ignores it)
		if len(te) != 1 || !strings.EqualFold(te[0], "chunked") {
			return nil, false, fmt.Errorf("%w: unsupported transfer encoding %q", errMalformed, te)
		}
		chunked = true
	}
	for i := range cl {
		cl[i] = strings.Trim(cl[i], " \t")
	}
	if len(cl) > 1 { // as net/http: equal duplicates are one, others an error
		for _, v := range cl[1:] {
			if v != cl[0] {
				return nil, false, fmt.Errorf("%w: multiple Content-Length headers %q", errMalformed, cl)
			}
		}
		r.headers = dedupe(r.headers, "Content-Length", cl[0])
	}
	if len(cl) > 0 {
		n, err := strconv.ParseUint(cl[0], 10, 63)
		if err != nil {
			return nil, false, fmt.Errorf("%w: bad Content-Length %q", errMalformed, cl[0])
		}
		r.length = int64(n)
	}
	closeConn := major < 1 || tokenIn(conn, "close") || (major == 1 && minor == 0 && !tokenIn(conn, "keep-alive"))
	switch {
	case head || code/100 == 1 || code == 204 || code == 304:
		if !head {
			r.length = 0
		}
		r.body = http.NoBody
		return r, !closeConn && code != http.StatusSwitchingProtocols, nil
	case chunked:
		r.headers = r.headers.Del("Content-Length")
		r.length = -1
		r.body = &chunkedBody{br: br, r: httputil.NewChunkedReader(br)}
		return r, !closeConn, nil
	case r.length == 0:
		r.body = http.NoBody
		return r, !closeConn, nil
	case r.length > 0:
		r.body = &fixedBody{br: br, n: r.length}
		return r, !closeConn, nil
	}
	r.body = io.NopCloser(br) // close-delimited
	return r, false, nil
}

// readFields reads header lines up to the blank line, as textproto's
// ReadMIMEHeader accepts them: continuation lines join the previous value,
// names may hold spaces, values no control characters.
func readFields(br *bufio.Reader, budget *int, fn func(name, value string)) error {
	if b, err := br.Peek(1); err == nil && (b[0] == ' ' || b[0] == '\t') {
		return fmt.Errorf("%w: header starts with a continuation", errMalformed)
	}
	for {
		line, err := readLine(br, budget)
		if err != nil {
			return err
		}
		if line == "" {
			return nil
		}
		// As textproto's readContinuedLineSlice: the first line must hold
		// the colon, each line is trimmed, lines join with one space, and
		// a failed continuation read ends the value.
		if !strings.Contains(line, ":") {
			return fmt.Errorf("%w: header line %q has no colon", errMalformed, line)
		}
		line = strings.Trim(line, " \t")
		for {
			b, err := br.Peek(1)
			if err != nil || (b[0] != ' ' && b[0] != '\t') {
				break
			}
			for b, err := br.Peek(1); err == nil && (b[0] == ' ' || b[0] == '\t'); b, err = br.Peek(1) {
				_, _ = br.Discard(1) // Peek just buffered it
			}
			more, err := readLine(br, budget)
			line += " "
			if err != nil {
				break
			}
			line += strings.Trim(more, " \t")
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !validToken(strings.ReplaceAll(name, " ", "x")) {
			return fmt.Errorf("%w: header line %q", errMalformed, line)
		}
		value = strings.TrimLeft(value, " \t")
		if !validValue(value) {
			return fmt.Errorf("%w: header value %q", errMalformed, value)
		}
		fn(name, value)
	}
}

// readLine reads one CRLF (or LF) terminated line within the budget.
func readLine(br *bufio.Reader, budget *int) (string, error) {
	var long []byte
	for {
		b, err := br.ReadSlice('\n')
		*budget -= len(b)
		if *budget < 0 {
			return "", fmt.Errorf("%w: head over %d bytes", errMalformed, maxHead)
		}
		if err == bufio.ErrBufferFull {
			long = append(long, b...)
			continue
		}
		if err != nil {
			if err == io.EOF && (len(b) > 0 || long != nil) {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		if long != nil {
			b = append(long, b...)
		}
		b = b[:len(b)-1]
		if len(b) > 0 && b[len(b)-1] == '\r' {
			b = b[:len(b)-1]
		}
		return string(b), nil
	}
}

func tokenIn(values []string, token string) bool {
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// dedupe keeps one line of name, with value.
func dedupe(h zhttp.Headers, name, value string) zhttp.Headers {
	out := h[:0]
	seen := false
	for _, x := range h {
		if strings.EqualFold(x.Name, name) {
			if seen {
				continue
			}
			seen, x.Value = true, value
		}
		out = append(out, x)
	}
	return out
}

// fixedBody reads a Content-Length body and reports io.EOF with its last
// bytes, so that a reader taking exactly the length also sees the end
// (and the connection goes back to the pool).
type fixedBody struct {
	br *bufio.Reader
	n  int64
}

func (b *fixedBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	m, err := b.br.Read(p)
	b.n -= int64(m)
	switch {
	case b.n == 0:
		return m, io.EOF
	case err == io.EOF:
		return m, io.ErrUnexpectedEOF
	}
	return m, err
}

func (b *fixedBody) Close() error { return nil }

// chunkedBody decodes a chunked body and consumes the trailer section
// after the last chunk, leaving the connection at the next response.
type chunkedBody struct {
	br *bufio.Reader
	r  io.Reader
}

func (b *chunkedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		if terr := b.trailer(); terr != nil {
			return n, terr
		}
	}
	return n, err
}

// trailer skips the trailer section as net/http's body.readTrailer does:
// a lone CRLF, or header lines ending in a blank line that must already be
// in the buffer.
func (b *chunkedBody) trailer() error {
	buf, err := b.br.Peek(2)
	if string(buf) == "\r\n" {
		_, _ = b.br.Discard(2) // Peek just buffered it
		return nil
	}
	if len(buf) < 2 {
		return io.ErrUnexpectedEOF
	}
	if err != nil {
		return err
	}
	for size := 4; ; size++ {
		buf, err := b.br.Peek(size)
		if strings.HasSuffix(string(buf), "\r\n\r\n") {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: trailer too long or cut", errMalformed)
		}
	}
	budget := maxHead
	return readFields(b.br, &budget, func(string, string) {})
}

func (b *chunkedBody) Close() error { return nil }
