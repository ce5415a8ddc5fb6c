package zurl

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// The outbound WebSocket handshake is written and read here rather than by
// a client library: gorilla/websocket refuses Sec-WebSocket-Extensions in
// the request (the proxy sends `grip` there) and gobwas' dialer hides the
// headers of a refusal, which the proxy passes on to the client. Written by
// hand it also keeps the requester's header order and the backend's (as
// zurl does). Framing after the handshake is gobwas/ws (ws.go).

// rejectBodyMax is zurl's RESPONSE_BODY_MAX: the body of a refused
// handshake kept for the `rejected` error.
const rejectBodyMax = 100000

// wsGUID is RFC 6455's key suffix.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// errBadHandshake is a 101 that is not a WebSocket upgrade for our key.
var errBadHandshake = errors.New("zurl: backend's 101 is not a valid WebSocket handshake")

// rejectedError is the backend's non-101 answer to the handshake.
type rejectedError struct {
	code    int
	reason  string
	headers zhttp.Headers
	body    []byte
}

func (e *rejectedError) Error() string {
	return fmt.Sprintf("websocket handshake rejected: %d", e.code)
}

// parseWSTarget checks a zws request uri: absolute ws or wss.
func parseWSTarget(uri string) (*url.URL, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("request uri %q: %w", uri, err)
	}
	if (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" || u.User != nil || !validHostHeader(u.Host) {
		return nil, fmt.Errorf("request uri %q: not an absolute ws(s) uri", uri)
	}
	return u, nil
}

// wsHostHeader is zurl's Host: the uri's host, with the port unless it is
// the scheme's default.
func wsHostHeader(u *url.URL) string {
	h := u.Hostname()
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	if p := u.Port(); p != "" && !(u.Scheme == "ws" && p == "80") && !(u.Scheme == "wss" && p == "443") {
		h += ":" + p
	}
	return h
}

// wsSkipHeader: request headers zurl drops because it writes its own
// (the handshake, Host) or cannot honour (content codings, a body).
func wsSkipHeader(name string) bool {
	if hopHeader(name) {
		return true
	}
	for _, s := range [...]string{"Sec-WebSocket-Key", "Sec-WebSocket-Version", "Accept-Encoding", "Content-Length"} {
		if strings.EqualFold(name, s) {
			return true
		}
	}
	return false
}

// wsDial connects, over TLS for wss, with connect-host/connect-port and
// the policy as for HTTP. The raw connection is watched (session.watch)
// from the start, so a cancel aborts the TLS handshake and all I/O after.
func (ss *session) wsDial(ctx context.Context) (net.Conn, error) {
	p, u := ss.first, ss.target
	h, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "wss" {
			port = "443"
		}
	}
	if p.ConnectHost != "" {
		h = p.ConnectHost
	}
	if p.ConnectPort != 0 {
		port = strconv.FormatInt(p.ConnectPort, 10)
	}
	c := ss.srv.http
	raw, err := c.dialPolicy(ctx, net.JoinHostPort(h, port), !p.IgnorePolicies)
	if err != nil {
		return nil, err
	}
	if !ss.watch(raw) {
		raw.Close()
		return nil, context.Canceled
	}
	if u.Scheme != "wss" {
		return raw, nil
	}
	sni := u.Hostname()
	if p.TrustConnectHost && p.ConnectHost != "" {
		sni = p.ConnectHost
	}
	// No ALPN: the upgrade is HTTP/1.1 only.
	tc := tls.Client(raw, &tls.Config{ServerName: sni, InsecureSkipVerify: p.IgnoreTLSErrors, RootCAs: c.rootCAs})
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return tc, nil
}

// wsHandshake writes the upgrade request and reads the answer: the 101's
// status and headers (all of them, in the backend's order and case, as
// zurl passes them), or a *rejectedError.
func (ss *session) wsHandshake(conn net.Conn) (*bufio.Reader, *respHead, error) {
	var kb [16]byte
	_, _ = rand.Read(kb[:])
	key := base64.StdEncoding.EncodeToString(kb[:])
	b := make([]byte, 0, 512)
	b = append(b, "GET "...)
	b = append(b, ss.target.RequestURI()...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, wsHostHeader(ss.target)...)
	b = append(b, "\r\n"...)
	for _, h := range ss.first.Headers {
		if wsSkipHeader(h.Name) {
			continue
		}
		if !validToken(h.Name) || !validValue(h.Value) {
			return nil, nil, fmt.Errorf("%w: header %q", errBadRequest, h.Name)
		}
		b = append(append(append(append(b, h.Name...), ": "...), textproto.TrimString(h.Value)...), "\r\n"...)
	}
	b = append(b, "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "...)
	b = append(append(b, key...), "\r\n\r\n"...)
	if _, err := conn.Write(b); err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(conn, 4096)
	head, err := readWSResponse(br, key)
	if err != nil {
		return nil, nil, err
	}
	return br, head, nil
}

// readWSResponse reads the answer to a handshake made with key: the 101's
// status and headers (all of them, in the backend's order and case), or a
// *rejectedError with the refusal and its body.
func readWSResponse(br *bufio.Reader, key string) (*respHead, error) {
	budget := maxHead
	line, err := readLine(br, &budget)
	if err != nil {
		return nil, err
	}
	code, reason, err := parseStatusLine(line)
	if err != nil {
		return nil, err
	}
	chunked, length := false, int64(-1)
	var hdr zhttp.Headers
	var upgrade, connection, accept string
	err = readFields(br, &budget, func(name, value string) {
		switch {
		case strings.EqualFold(name, "Upgrade"):
			upgrade = value
		case strings.EqualFold(name, "Connection"):
			connection += "," + value
		case strings.EqualFold(name, "Sec-WebSocket-Accept"):
			accept = value
		case strings.EqualFold(name, "Transfer-Encoding"):
			chunked = strings.EqualFold(strings.TrimSpace(value), "chunked")
			return
		case strings.EqualFold(name, "Content-Length"):
			if n, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64); err == nil && n >= 0 {
				length = n
			}
			if code != http.StatusSwitchingProtocols {
				return // rewritten below, as zurl does
			}
		}
		hdr = append(hdr, zhttp.Header{Name: name, Value: value})
	})
	if err != nil {
		return nil, err
	}
	if code == http.StatusSwitchingProtocols {
		sum := sha1.Sum([]byte(key + wsGUID))
		if !strings.EqualFold(upgrade, "websocket") || !tokenIn([]string{connection}, "upgrade") ||
			accept != base64.StdEncoding.EncodeToString(sum[:]) {
			return nil, errBadHandshake
		}
		return &respHead{code: code, reason: reason, headers: hdr}, nil
	}
	// A refusal: its body (at most rejectBodyMax bytes) goes to the
	// requester with the length it has, as zurl sends it.
	var body io.Reader = br
	switch {
	case chunked:
		body = httputil.NewChunkedReader(br)
	case length >= 0:
		body = io.LimitReader(br, length)
	}
	data, err := io.ReadAll(io.LimitReader(body, rejectBodyMax))
	if err != nil && !(length < 0 && !chunked && errors.Is(err, io.ErrUnexpectedEOF)) {
		return nil, err
	}
	hdr = append(hdr, zhttp.Header{Name: "Content-Length", Value: strconv.Itoa(len(data))})
	return nil, &rejectedError{code: code, reason: reason, headers: hdr, body: data}
}

// parseStatusLine splits "HTTP/1.1 403 Forbidden".
func parseStatusLine(line string) (code int, reason string, err error) {
	proto, status, ok := strings.Cut(line, " ")
	if _, _, vok := http.ParseHTTPVersion(proto); !ok || !vok {
		return 0, "", fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	codeStr, reason, hasReason := strings.Cut(strings.TrimLeft(status, " "), " ")
	code, err = strconv.Atoi(codeStr)
	if len(codeStr) != 3 || err != nil {
		return 0, "", fmt.Errorf("%w: status code %q", errMalformed, codeStr)
	}
	if !hasReason {
		reason = http.StatusText(code)
	}
	return code, reason, nil
}
