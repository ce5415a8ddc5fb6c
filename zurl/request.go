package zurl

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// maxRedirects is zurl's limit for follow-redirects.
const maxRedirects = 8

// reqOpts travel in the request context to the shared dialer and redirect
// check, so one transport serves requests with different options.
type reqOpts struct {
	follow      bool
	checkPolicy bool
}

type optsKey struct{}

// tlsKey selects a transport: TLS verification settings are per transport
// in net/http, connection pools are per dial address inside it.
type tlsKey struct {
	insecure bool
	sni      string
}

type transportEntry struct {
	t *http.Transport
	c *http.Client
}

// clients holds the shared outbound transports.
type clients struct {
	// policy is swapped whole by Reload; readers load it once per check.
	policy atomic.Pointer[policy]
	// rootCAs, when set (tests), replaces the system roots.
	rootCAs *x509.CertPool
	dialer  net.Dialer
	maxIdle int
	lean    *leanPool
	mu      sync.Mutex
	m       map[tlsKey]transportEntry
}

func newClients(p *policy, maxOpen int) *clients {
	c := &clients{maxIdle: maxOpen, m: map[tlsKey]transportEntry{},
		dialer: net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}}
	c.policy.Store(p)
	c.lean = newLeanPool(c.dialPolicy)
	return c
}

func (c *clients) get(k tlsKey) transportEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		return e
	}
	t := &http.Transport{
		Proxy:               nil,
		DialContext:         c.dial,
		MaxIdleConns:        c.maxIdle,
		MaxIdleConnsPerHost: min(c.maxIdle, 256),
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		// Content coding is ours to handle (decode.go), not net/http's.
		DisableCompression: true,
		TLSClientConfig:    &tls.Config{InsecureSkipVerify: k.insecure, ServerName: k.sni, RootCAs: c.rootCAs},
		// HTTP/1.1 only, like zurl's libcurl set-up.
		TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{},
		ReadBufferSize:  32 << 10,
		WriteBufferSize: 32 << 10,
	}
	e := transportEntry{t: t, c: &http.Client{Transport: t, CheckRedirect: c.checkRedirect}}
	c.m[k] = e
	return e
}

func (c *clients) close() {
	c.lean.closeIdle(0)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.m {
		e.t.CloseIdleConnections()
	}
}

// dial is net/http's dialer: the request's options say whether to check
// the policy.
func (c *clients) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	o, _ := ctx.Value(optsKey{}).(*reqOpts)
	return c.dialPolicy(ctx, addr, o != nil && o.checkPolicy)
}

// dialPolicy applies the policy to the resolved addresses of requests that
// do not ignore policies, so a name resolving into a denied range is
// refused.
func (c *clients) dialPolicy(ctx context.Context, addr string, checkPolicy bool) (net.Conn, error) {
	const network = "tcp"
	if !checkPolicy {
		return c.dialer.DialContext(ctx, network, addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	lastErr := ErrPolicy
	pol := c.policy.Load()
	for _, ip := range ips {
		if !pol.allowed(ip.IP.String()) {
			continue
		}
		conn, err := c.dialer.DialContext(ctx, network, net.JoinHostPort(ip.IP.String(), port))
		if err == nil {
			return conn, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func (c *clients) checkRedirect(req *http.Request, via []*http.Request) error {
	o, _ := req.Context().Value(optsKey{}).(*reqOpts)
	if o == nil || !o.follow {
		return http.ErrUseLastResponse
	}
	if len(via) > maxRedirects {
		return ErrTooManyRedirects
	}
	if o.checkPolicy && !c.policy.Load().allowed(req.URL.Hostname()) {
		return ErrPolicy
	}
	return nil
}

// parseTarget checks a request uri: absolute http or https.
func parseTarget(uri string) (*url.URL, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("request uri %q: %w", uri, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("request uri %q: not an absolute http(s) uri", uri)
	}
	return u, nil
}

// hopHeaders are per-connection: net/http writes its own.
func hopHeader(name string) bool {
	// By length first: most names are none of these and cost one compare.
	switch len(name) {
	case 2:
		return strings.EqualFold(name, "te")
	case 4:
		return strings.EqualFold(name, "host")
	case 7:
		return strings.EqualFold(name, "trailer") || strings.EqualFold(name, "upgrade")
	case 10:
		return strings.EqualFold(name, "connection") || strings.EqualFold(name, "keep-alive")
	case 16:
		return strings.EqualFold(name, "proxy-connection")
	case 17:
		return strings.EqualFold(name, "transfer-encoding")
	}
	return false
}

// build makes the outbound request. body is nil when the request has none.
func (c *clients) build(ctx context.Context, p *zhttp.Packet, u *url.URL, body io.Reader) (*http.Request, *http.Client, error) {
	dial := u.Host
	if p.ConnectHost != "" || p.ConnectPort != 0 {
		h, port := u.Hostname(), u.Port()
		if port == "" {
			port = "80"
			if u.Scheme == "https" {
				port = "443"
			}
		}
		if p.ConnectHost != "" {
			h = p.ConnectHost
		}
		if p.ConnectPort != 0 {
			port = strconv.FormatInt(p.ConnectPort, 10)
		}
		dial = net.JoinHostPort(h, port)
	}
	ctx = context.WithValue(ctx, optsKey{}, &reqOpts{follow: p.FollowRedirects, checkPolicy: !p.IgnorePolicies})
	method := p.Method
	if method == "" {
		method = http.MethodGet
	}
	target := *u
	target.Host = dial // connect here; the Host header and SNI keep the uri's host
	req, err := http.NewRequestWithContext(ctx, method, target.String(), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("building request: %w", err)
	}
	req.Host = u.Host
	req.ContentLength = -1
	hasAccept := false
	for _, h := range p.Headers {
		if hopHeader(h.Name) {
			continue
		}
		if strings.EqualFold(h.Name, "Content-Length") {
			if n, err := strconv.ParseInt(strings.TrimSpace(h.Value), 10, 64); err == nil && n >= 0 {
				req.ContentLength = n
			}
			continue
		}
		if strings.EqualFold(h.Name, "Accept") {
			hasAccept = true
		}
		req.Header[http.CanonicalHeaderKey(h.Name)] = append(req.Header[http.CanonicalHeaderKey(h.Name)], h.Value)
	}
	if _, ok := req.Header["Accept-Encoding"]; !ok {
		req.Header["Accept-Encoding"] = []string{acceptEncoding} // we decode (decode.go)
	}
	if !hasAccept {
		req.Header["Accept"] = []string{"*/*"} // libcurl's default, which zurl sends
	}
	if _, ok := req.Header["User-Agent"]; !ok {
		req.Header["User-Agent"] = []string{""} // zurl sends none; "" stops Go's
	}
	if req.ContentLength < 0 && !p.More {
		req.ContentLength = int64(len(p.Body)) // whole body at hand: no chunking
	}
	switch {
	case body == nil || req.ContentLength == 0:
		req.Body, req.ContentLength = http.NoBody, 0
	case !p.More:
		// The whole body is at hand: it can be sent again (a stale
		// keep-alive connection, a 307/308 redirect).
		req.Body = io.NopCloser(body)
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(p.Body)), nil }
	default:
		req.Body = io.NopCloser(body)
	}
	sni := ""
	if u.Scheme == "https" {
		sni = u.Hostname()
		if p.TrustConnectHost && p.ConnectHost != "" {
			sni = p.ConnectHost
		}
	}
	return req, c.get(tlsKey{insecure: p.IgnoreTLSErrors, sni: sni}).c, nil
}

// condition maps a request error to a zhttp error condition (zhttp.md §8).
func condition(err error) string {
	var tlsRec tls.RecordHeaderError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certInv x509.CertificateInvalidError
	var certErr *tls.CertificateVerificationError
	var alert tls.AlertError
	var ne net.Error
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.Is(err, ErrPolicy):
		return "policy-violation"
	case errors.Is(err, errBadRequest):
		return "bad-request"
	case errors.Is(err, ErrMaxSize):
		return "max-size-exceeded"
	case errors.Is(err, ErrTooManyRedirects):
		return "too-many-redirects"
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ECONNRESET):
		return "remote-connection-failed"
	case errors.As(err, &tlsRec), errors.As(err, &unknownAuth), errors.As(err, &hostErr),
		errors.As(err, &certInv), errors.As(err, &certErr), errors.As(err, &alert):
		return "tls-error"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "connection-timeout"
	case errors.As(err, &dnsErr), errors.As(err, &opErr) && opErr.Op == "dial":
		return "remote-connection-failed"
	}
	return "undefined-condition"
}

func reason(resp *http.Response) string {
	if i := strings.IndexByte(resp.Status, ' '); i >= 0 {
		return resp.Status[i+1:]
	}
	return http.StatusText(resp.StatusCode)
}

// responseHeaders lists the response headers minus hop-by-hop ones.
// net/http keeps them in a map, so the backend's order is lost; names are
// sorted to make the output stable (values of one name keep their order).
func responseHeaders(resp *http.Response) zhttp.Headers {
	names := make([]string, 0, len(resp.Header))
	n := 0
	for name, vals := range resp.Header {
		if hopHeader(name) {
			continue
		}
		names = append(names, name)
		n += len(vals)
	}
	sort.Strings(names)
	h := make(zhttp.Headers, 0, n+1)
	for _, name := range names {
		for _, v := range resp.Header[name] {
			h = append(h, zhttp.Header{Name: name, Value: v})
		}
	}
	return h
}
