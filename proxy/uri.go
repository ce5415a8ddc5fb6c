package proxy

import (
	"strconv"
	"strings"

	"github.com/pushpin-go/pushpin/configs/routing"
	"github.com/pushpin-go/pushpin/internal/uuid"
)

// splitURI splits an absolute request URI into scheme, host (with port as
// given) and the rest (path and query). It does no unescaping: routes match
// the path as sent.
func splitURI(uri string) (scheme, host, rest string, ok bool) {
	i := strings.Index(uri, "://")
	if i <= 0 {
		return "", "", "", false
	}
	scheme, uri = strings.ToLower(uri[:i]), uri[i+3:]
	j := strings.IndexAny(uri, "/?#")
	if j < 0 {
		return scheme, uri, "/", true
	}
	host, rest = uri[:j], uri[j:]
	if rest[0] != '/' {
		rest = "/" + rest
	}
	return scheme, host, rest, true
}

// hostOnly drops the port of host[:port] (keeping IPv6 brackets whole).
func hostOnly(host string) string {
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i > 0 {
			return host[:i+1]
		}
		return host
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		return host[:i]
	}
	return host
}

// pathOf returns the path part of rest (without query).
func pathOf(rest string) string {
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		return rest[:i]
	}
	return rest
}

// rewritePath applies path_rem and replace_beg to rest (path + query).
func rewritePath(rest string, r *routing.Route) string {
	switch {
	case r.HasReplaceBeg && strings.HasPrefix(rest, r.PathBeg):
		rest = r.ReplaceBeg + rest[len(r.PathBeg):]
	case r.PathRem > 0:
		if r.PathRem >= len(rest) {
			rest = ""
		} else {
			rest = rest[r.PathRem:]
		}
	}
	if rest == "" || rest[0] != '/' {
		rest = "/" + rest
	}
	return rest
}

// targetURI builds the URI sent to zurl for a target: the scheme follows
// the target's ssl prop, the host is the client's unless as_host/host= say
// otherwise (the caller passes the result in host).
func targetURI(t *routing.Target, host, rest string) string {
	scheme := "http://"
	if t.SSL {
		scheme = "https://"
	}
	return scheme + host + rest
}

// targetName is host:port for logs and debug text.
func targetName(t *routing.Target) string {
	switch t.Type {
	case routing.TargetTest:
		return "test"
	case routing.TargetHTTP:
		return t.Host + ":" + strconv.Itoa(t.Port)
	}
	return t.Spec
}

// newUUID returns a random version 4 UUID, the form Pushpin uses for
// its outbound request ids.
func newUUID() string { return uuid.V4() }
