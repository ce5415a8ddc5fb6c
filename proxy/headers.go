package proxy

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/configs/routing"
	"github.com/pushpin-go/pushpin/proto/grip"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// xffRule is a parsed x_forwarded_for / x_forwarded_for_trusted setting.
type xffRule struct {
	truncate int // keep the last N incoming values; -1 keeps all
	append   bool
}

func parseXFF(key string, items []string) (xffRule, error) {
	r := xffRule{truncate: -1}
	for _, it := range items {
		it = strings.TrimSpace(it)
		switch {
		case it == "":
		case it == "append":
			r.append = true
		case strings.HasPrefix(it, "truncate:"):
			n, err := strconv.Atoi(it[len("truncate:"):])
			if err != nil || n < 0 {
				return r, fmt.Errorf("[proxy] %s: %q is not truncate:<n>", key, it)
			}
			r.truncate = n
		default:
			return r, fmt.Errorf("[proxy] %s: unknown rule %q", key, it)
		}
	}
	return r, nil
}

// apply returns the X-Forwarded-For values to send.
func (r xffRule) apply(in []string, peer string) []string {
	if r.truncate >= 0 && len(in) > r.truncate {
		in = in[len(in)-r.truncate:]
	}
	if r.append && peer != "" {
		in = append(in, peer)
	}
	return in
}

// rewriter holds everything the request-header rules need that is fixed
// for the life of the config: parsed XFF rules, keys and the cached signer.
type rewriter struct {
	xff, xffTrusted    xffRule
	xfp                configs.XFPMode
	acceptXFP          bool
	acceptPushpinRoute bool
	upstream           *grip.Key // nil: no client is trusted
}

// rewriteIn is the per-request input of the header rules.
type rewriteIn struct {
	peer    string
	https   bool
	host    string           // new Host header value, "" to keep the client's
	headers []routing.Header // route header= props
	signer  *grip.Signer     // nil for no_grip routes
	trusted bool             // client sent a Grip-Sig valid for upstream_key
}

// isTrusted reports whether the client's Grip-Sig verifies with upstream_key.
func (rw *rewriter) isTrusted(h zhttp.Headers) bool {
	if rw.upstream == nil {
		return false
	}
	tok := h.Get("Grip-Sig")
	return tok != "" && rw.upstream.Verify(tok, time.Now()) == nil
}

// hopByHop lists the request headers never forwarded (grip.md §1).
func hopByHop(name string) bool {
	switch len(name) {
	case 6:
		return strings.EqualFold(name, "Expect")
	case 10:
		return strings.EqualFold(name, "Connection") || strings.EqualFold(name, "Keep-Alive")
	case 15:
		return strings.EqualFold(name, "Accept-Encoding")
	case 16:
		return strings.EqualFold(name, "Content-Encoding")
	case 17:
		return strings.EqualFold(name, "Transfer-Encoding")
	}
	return false
}

// request applies grip.md §1 to client headers in one pass and returns the
// headers for the backend. The input is not modified.
func (rw *rewriter) request(in zhttp.Headers, r *rewriteIn) (zhttp.Headers, error) {
	out := make(zhttp.Headers, 0, len(in)+5)
	var xff []string
	dropXFP := rw.acceptXFP || rw.xfp != configs.XFPNone
	hostDone := false
	for _, h := range in {
		n := h.Name
		switch {
		case hopByHop(n):
			continue
		case rw.acceptPushpinRoute && strings.EqualFold(n, "Pushpin-Route"):
			continue
		case !r.trusted && grip.IsGripHeader(n):
			continue
		case strings.EqualFold(n, "X-Forwarded-For"):
			for _, v := range strings.Split(h.Value, ",") {
				if v = strings.TrimSpace(v); v != "" {
					xff = append(xff, v)
				}
			}
			continue
		case dropXFP && (strings.EqualFold(n, "X-Forwarded-Proto") || strings.EqualFold(n, "X-Forwarded-Protocol")):
			continue
		case strings.EqualFold(n, "Host") && r.host != "":
			if !hostDone {
				out = append(out, zhttp.Header{Name: n, Value: r.host})
				hostDone = true
			}
			continue
		case routeHeaderSet(r.headers, n):
			continue
		}
		out = append(out, h)
	}
	if r.host != "" && !hostDone {
		out = append(out, zhttp.Header{Name: "Host", Value: r.host})
	}
	for _, h := range r.headers {
		if h.Value != "" {
			out = append(out, zhttp.Header{Name: h.Name, Value: h.Value})
		}
	}
	if r.signer != nil && !r.trusted {
		tok, err := r.signer.Token()
		if err != nil {
			return nil, fmt.Errorf("signing Grip-Sig: %w", err)
		}
		out = append(out, zhttp.Header{Name: "Grip-Sig", Value: tok},
			zhttp.Header{Name: "Grip-Feature", Value: grip.Feature})
	}
	rule := rw.xff
	if r.trusted {
		rule = rw.xffTrusted
	}
	if xff = rule.apply(xff, r.peer); len(xff) > 0 {
		out = append(out, zhttp.Header{Name: "X-Forwarded-For", Value: strings.Join(xff, ", ")})
	}
	if r.https && rw.xfp != configs.XFPNone {
		out = append(out, zhttp.Header{Name: "X-Forwarded-Proto", Value: "https"})
		if rw.xfp == configs.XFPBoth {
			out = append(out, zhttp.Header{Name: "X-Forwarded-Protocol", Value: "https"})
		}
	}
	return out, nil
}

func routeHeaderSet(hs []routing.Header, name string) bool {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return true
		}
	}
	return false
}

// responseHopByHop lists the backend response headers never relayed
// (grip.md §2); Content-Encoding because zurl already decoded the body.
func responseHopByHop(name string) bool {
	switch len(name) {
	case 10:
		return strings.EqualFold(name, "Connection") || strings.EqualFold(name, "Keep-Alive")
	case 16:
		return strings.EqualFold(name, "Content-Encoding")
	case 17:
		return strings.EqualFold(name, "Transfer-Encoding")
	}
	return false
}

// relayHeaders filters a backend response head for the client.
func relayHeaders(in zhttp.Headers) zhttp.Headers {
	out := make(zhttp.Headers, 0, len(in))
	for _, h := range in {
		if !responseHopByHop(h.Name) {
			out = append(out, h)
		}
	}
	return out
}
