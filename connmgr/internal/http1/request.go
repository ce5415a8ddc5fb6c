// Package http1 is the connection manager's HTTP/1.x wire code: an
// incremental request-head parser, request body decoders (Content-Length and
// chunked) that never copy, and the response framing rules condure applies
// (zhttp.md §5.1). It holds no per-connection state beyond small structs,
// so an idle connection costs no buffer.
package http1

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// Limits bound what a request head may use.
type Limits struct {
	// MaxHead is the largest head (request line through the blank line);
	// condure uses its --buffer-size.
	MaxHead int
	// MaxHeaders is the most header lines; condure accepts 64.
	MaxHeaders int
	// MaxBody, when > 0, refuses a larger Content-Length with 413.
	MaxBody int64
}

// DefaultLimits are condure's (buffer size 8192, 64 headers).
var DefaultLimits = Limits{MaxHead: 8192, MaxHeaders: 64}

// Request is a parsed request head. Strings share one allocation.
type Request struct {
	Method string
	Target string
	Minor  int // HTTP/1.<Minor>, 0 or 1
	// Headers in wire order, duplicates kept, names as sent.
	Headers zhttp.Headers
	Host    string
	// ContentLength is the body length, or -1 when the body is chunked or
	// absent (Chunked says which).
	ContentLength int64
	Chunked       bool
	// KeepAlive: the client allows the connection to persist after this
	// exchange (1.1 unless "close"; 1.0 only with "keep-alive").
	KeepAlive bool
	// Expect100: the client waits for "100 Continue" before sending the body.
	Expect100 bool
	// WebSocket: an Upgrade: websocket handshake.
	WebSocket bool
}

// HasBody reports whether a body follows the head.
func (r *Request) HasBody() bool { return r.Chunked || r.ContentLength > 0 }

// URI builds the absolute URI condure puts in the zhttp request: an
// absolute-form target as is, else scheme://Host/target ("localhost" when
// there is no Host header).
func (r *Request) URI(scheme string) string {
	if i := strings.Index(r.Target, "://"); i > 0 && r.Target[0] != '/' {
		return r.Target
	}
	host := r.Host
	if host == "" {
		host = "localhost"
	}
	if r.Target == "*" {
		return scheme + "://" + host
	}
	return scheme + "://" + host + r.Target
}

// headEnd returns the length of the head in b (through the empty line), or
// -1 if it is not complete yet. Bare LF line ends are accepted (RFC 9112 §2.2).
func headEnd(b []byte) int {
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		line := b[i : i+j]
		i += j + 1
		if len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
			return i
		}
	}
	return -1
}

// skipEmptyLines drops CRLFs a client may send before a request line
// (RFC 9112 §2.2, common after a POST body).
func skipEmptyLines(b []byte) int {
	n := 0
	for n < len(b) {
		switch {
		case b[n] == '\n':
			n++
		case b[n] == '\r' && n+1 < len(b) && b[n+1] == '\n':
			n += 2
		default:
			return n
		}
	}
	return n
}

// ParseRequest parses the request head at the start of b. It returns the
// request and the number of bytes the head used; ErrIncomplete when b does
// not hold a whole head yet (and is within the limit); an *Error otherwise.
func ParseRequest(b []byte, lim Limits) (*Request, int, error) {
	if lim.MaxHead <= 0 {
		lim.MaxHead = DefaultLimits.MaxHead
	}
	if lim.MaxHeaders <= 0 {
		lim.MaxHeaders = DefaultLimits.MaxHeaders
	}
	skip := skipEmptyLines(b)
	if skip > lim.MaxHead {
		return nil, 0, bad("too many empty lines before the request")
	}
	end := headEnd(b[skip:])
	if end < 0 {
		if len(b)-skip >= lim.MaxHead {
			return nil, 0, classed(ErrHeadTooLarge, "request head exceeds "+strconv.Itoa(lim.MaxHead)+" bytes")
		}
		if skip == len(b) && skip > 0 {
			return nil, 0, ErrIncomplete
		}
		// Refuse at once what cannot start a request line (a TLS hello, binary).
		if len(b) > skip && b[skip] != '\r' && !isTokenChar(b[skip]) {
			return nil, 0, bad("request line does not start with a method")
		}
		return nil, 0, ErrIncomplete
	}
	if end > lim.MaxHead {
		return nil, 0, classed(ErrHeadTooLarge, "request head exceeds "+strconv.Itoa(lim.MaxHead)+" bytes")
	}
	// One allocation for every string of the head.
	head := string(b[skip : skip+end])
	r, err := parseHead(head, lim)
	if err != nil {
		return nil, 0, err
	}
	return r, skip + end, nil
}

func nextLine(s string) (line, rest string) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return s, ""
	}
	line, rest = s[:i], s[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

func parseHead(head string, lim Limits) (*Request, error) {
	line, rest := nextLine(head)
	r := &Request{ContentLength: -1}
	if err := parseRequestLine(line, r); err != nil {
		return nil, err
	}
	var (
		connClose, connKeepAlive, connUpgrade, upgradeWS bool
		haveCL, haveTE                                   bool
		n                                                int
	)
	hdrs := make(zhttp.Headers, 0, 8)
	for {
		line, rest = nextLine(rest)
		if line == "" {
			break
		}
		n++
		if n > lim.MaxHeaders {
			return nil, classed(ErrHeadTooLarge, "more than "+strconv.Itoa(lim.MaxHeaders)+" header lines")
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil, bad("obsolete header line folding")
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			return nil, bad("header line without a name and colon")
		}
		name := line[:colon]
		for i := 0; i < len(name); i++ {
			if !isTokenChar(name[i]) {
				return nil, bad("invalid character in header name")
			}
		}
		value := strings.Trim(line[colon+1:], " \t")
		for i := 0; i < len(value); i++ {
			if c := value[i]; c < 0x20 && c != '\t' || c == 0x7f {
				return nil, bad("control character in header value")
			}
		}
		hdrs = append(hdrs, zhttp.Header{Name: name, Value: value})
		switch {
		case strings.EqualFold(name, "Host"):
			if r.Host != "" {
				return nil, bad("more than one Host header")
			}
			r.Host = value
		case strings.EqualFold(name, "Content-Length"):
			v, err := parseLength(value)
			if err != nil {
				return nil, err
			}
			if haveCL && v != r.ContentLength {
				return nil, bad("conflicting Content-Length headers")
			}
			haveCL, r.ContentLength = true, v
		case strings.EqualFold(name, "Transfer-Encoding"):
			haveTE = true
			codings := strings.Split(value, ",")
			last := strings.TrimSpace(codings[len(codings)-1])
			if !strings.EqualFold(last, "chunked") {
				return nil, classed(ErrNotImplemented, "unsupported transfer coding "+strconv.Quote(value))
			}
			r.Chunked = true
		case strings.EqualFold(name, "Connection"):
			forTokens(value, func(tok string) {
				switch {
				case strings.EqualFold(tok, "close"):
					connClose = true
				case strings.EqualFold(tok, "keep-alive"):
					connKeepAlive = true
				case strings.EqualFold(tok, "upgrade"):
					connUpgrade = true
				}
			})
		case strings.EqualFold(name, "Expect"):
			if strings.EqualFold(value, "100-continue") {
				r.Expect100 = true
			} else {
				return nil, &Error{Code: 417, Reason: "Expectation Failed", Msg: "unsupported expectation"}
			}
		case strings.EqualFold(name, "Upgrade"):
			forTokens(value, func(tok string) {
				if strings.EqualFold(tok, "websocket") {
					upgradeWS = true
				}
			})
		}
	}
	r.Headers = hdrs
	if haveTE {
		if r.Minor == 0 {
			return nil, bad("Transfer-Encoding in an HTTP/1.0 request")
		}
		if haveCL {
			// Both framings at once is the request-smuggling shape: refuse.
			return nil, bad("both Transfer-Encoding and Content-Length")
		}
		r.ContentLength = -1
	}
	if lim.MaxBody > 0 && r.ContentLength > lim.MaxBody {
		return nil, classed(ErrBodyTooLarge, "Content-Length over the limit")
	}
	if r.Minor >= 1 {
		r.KeepAlive = !connClose
		r.Expect100 = r.Expect100 && r.HasBody()
	} else {
		r.KeepAlive = connKeepAlive && !connClose
		r.Expect100 = false
	}
	r.WebSocket = connUpgrade && upgradeWS && r.Method == "GET"
	return r, nil
}

func parseRequestLine(line string, r *Request) error {
	sp1 := strings.IndexByte(line, ' ')
	if sp1 <= 0 {
		return bad("malformed request line")
	}
	r.Method = line[:sp1]
	for i := 0; i < len(r.Method); i++ {
		if !isTokenChar(r.Method[i]) {
			return bad("invalid method")
		}
	}
	rest := line[sp1+1:]
	sp2 := strings.LastIndexByte(rest, ' ')
	if sp2 <= 0 {
		return bad("malformed request line")
	}
	r.Target, rest = rest[:sp2], rest[sp2+1:]
	for i := 0; i < len(r.Target); i++ {
		if c := r.Target[i]; c <= ' ' || c == 0x7f {
			return bad("invalid character in request target")
		}
	}
	if r.Target[0] != '/' && r.Target != "*" && !strings.Contains(r.Target, "://") {
		if r.Method != "CONNECT" {
			return bad("request target is not origin or absolute form")
		}
	}
	if len(rest) != 8 || !strings.HasPrefix(rest, "HTTP/") || rest[6] != '.' ||
		rest[5] < '0' || rest[5] > '9' || rest[7] < '0' || rest[7] > '9' {
		return bad("malformed HTTP version")
	}
	if rest[5] != '1' {
		return classed(ErrVersionUnsupported, "HTTP version "+rest[5:])
	}
	r.Minor = min(int(rest[7]-'0'), 1)
	return nil
}

func parseLength(v string) (int64, error) {
	if v == "" || len(v) > 18 {
		return 0, bad("invalid Content-Length")
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, bad("invalid Content-Length")
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

func forTokens(v string, fn func(string)) {
	for v != "" {
		var tok string
		if i := strings.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, ""
		}
		if tok = strings.TrimSpace(tok); tok != "" {
			fn(tok)
		}
	}
}

// isTokenChar reports RFC 9110 tchar.
func isTokenChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
