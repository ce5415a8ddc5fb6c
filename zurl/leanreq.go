package zurl

import (
	"bufio"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// leanReq is an outbound request the lean client writes itself, straight
// from the zhttp packet: building an http.Request (header map, URL copy)
// and net/http's Request.write cost a fifth of zurl's CPU per request. It
// writes what net/http's Transport would for the same packet (build):
// canonical header names, trimmed values, the same defaults and
// Content-Length rule; only the header order differs, the requester's
// instead of sorted, as zurl's libcurl keeps it.
type leanReq struct {
	method, target, host string // request line and Host header
	addr                 string // dial address host:port
	headers              zhttp.Headers
	accept, acceptEnc    bool // the requester sent Accept / Accept-Encoding
	body                 []byte
	length               int64 // Content-Length to send, -1 for none
	checkPolicy          bool
}

// leanRequest returns the lean form of the request, or nil when it needs
// net/http: https, a body still to come, redirects to follow, Expect, or
// anything net/http would refuse or rewrite (its error stays the same).
func leanRequest(p *zhttp.Packet, u *url.URL) *leanReq {
	if u.Scheme != "http" || p.More || p.FollowRedirects || u.User != nil {
		return nil
	}
	method := p.Method
	if method == "" {
		method = http.MethodGet
	}
	if method == http.MethodConnect || !validToken(method) || !validHostHeader(u.Host) {
		return nil
	}
	r := &leanReq{method: method, target: u.RequestURI(), host: u.Host, body: p.Body, length: -1,
		checkPolicy: !p.IgnorePolicies, addr: dialAddr(p, u)}
	explicit := int64(-1)
	ua := false
	for _, h := range p.Headers {
		if hopHeader(h.Name) {
			continue
		}
		if !validToken(h.Name) || !validValue(h.Value) {
			return nil
		}
		switch {
		case strings.EqualFold(h.Name, "User-Agent"):
			// net/http writes the first value only, and none when empty.
			if ua || h.Value == "" {
				ua = true
				continue
			}
			ua = true
		case strings.EqualFold(h.Name, "Content-Length"):
			n, err := strconv.ParseInt(strings.TrimSpace(h.Value), 10, 64)
			if err == nil && n >= 0 {
				explicit = n
			}
			continue
		case strings.EqualFold(h.Name, "Expect"):
			return nil
		case strings.EqualFold(h.Name, "Accept"):
			r.accept = true
		case strings.EqualFold(h.Name, "Accept-Encoding"):
			r.acceptEnc = true
		}
		if r.headers == nil {
			r.headers = make(zhttp.Headers, 0, len(p.Headers))
		}
		r.headers = append(r.headers, h)
	}
	if explicit >= 0 && explicit != int64(len(p.Body)) {
		return nil // net/http reports the mismatch
	}
	// net/http's transferWriter.shouldSendContentLength for a known length
	// (its identity-encoding case never applies to our requests).
	if n := int64(len(p.Body)); n > 0 || method == "POST" || method == "PUT" || method == "PATCH" {
		r.length = n
	}
	return r
}

// dialAddr is where the request connects: the uri's host, or connect-host
// and connect-port instead (build does the same for net/http).
func dialAddr(p *zhttp.Packet, u *url.URL) string {
	h, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
	}
	if p.ConnectHost != "" {
		h = p.ConnectHost
	}
	if p.ConnectPort != 0 {
		port = strconv.FormatInt(p.ConnectPort, 10)
	}
	return net.JoinHostPort(h, port)
}

// write puts the request on w.
//
//nolint:errcheck // a bufio.Writer's error is sticky: the caller's Flush reports it
func (r *leanReq) write(w *bufio.Writer) {
	w.WriteString(r.method)
	w.WriteByte(' ')
	w.WriteString(r.target)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(r.host)
	w.WriteString("\r\n")
	for _, h := range r.headers {
		w.WriteString(textproto.CanonicalMIMEHeaderKey(h.Name))
		w.WriteString(": ")
		w.WriteString(textproto.TrimString(h.Value))
		w.WriteString("\r\n")
	}
	if !r.accept {
		w.WriteString("Accept: */*\r\n") // libcurl's default, which zurl sends
	}
	if !r.acceptEnc {
		w.WriteString("Accept-Encoding: " + acceptEncoding + "\r\n") // we decode (decode.go)
	}
	if r.length >= 0 {
		w.WriteString("Content-Length: ")
		var b [20]byte
		w.Write(strconv.AppendInt(b[:0], r.length, 10))
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
	w.Write(r.body)
}

// validToken: an HTTP token (method, header name), as net/http requires.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// validValue: no control characters but tab, as net/http requires.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// validHostHeader: a host[:port] net/http would write unchanged.
func validHostHeader(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; c <= ' ' || c >= 0x7f || c == '/' || c == '%' {
			return false
		}
	}
	return true
}
