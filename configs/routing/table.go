package routing

import (
	"net"
	"strings"
)

// Table is an immutable set of routes ready for matching. Share it freely
// between goroutines; reloads build a new Table.
type Table struct {
	routes   []*Route
	byDomain map[string][]*Route // lowercased host -> routes sorted by preference
	any      []*Route            // "*" routes sorted by preference
	byID     map[string]*Route
	dupIDs   map[string]bool
}

func newTable() *Table {
	return &Table{byDomain: map[string][]*Route{}, byID: map[string]*Route{}, dupIDs: map[string]bool{}}
}

// add inserts r keeping each candidate list sorted (stable: ties keep file
// order) and rejects a second route with the same domain and condition.
func (t *Table) add(r *Route) error {
	if r.Domain != "" {
		list := t.any
		if r.Domain != "*" {
			list = t.byDomain[r.Domain]
		}
		for _, o := range list {
			if o.Proto == r.Proto && o.SSL == r.SSL && o.PathBeg == r.PathBeg {
				return ErrDuplicateCondition
			}
		}
		at := len(list)
		for i, o := range list {
			if better(r, o) {
				at = i
				break
			}
		}
		list = append(list, nil)
		copy(list[at+1:], list[at:])
		list[at] = r
		if r.Domain == "*" {
			t.any = list
		} else {
			t.byDomain[r.Domain] = list
		}
	}
	t.routes = append(t.routes, r)
	if _, seen := t.byID[r.ID]; seen {
		// Pushpin can't tell which one a Pushpin-Route header means.
		t.dupIDs[r.ID] = true
		delete(t.byID, r.ID)
	} else if !t.dupIDs[r.ID] {
		t.byID[r.ID] = r
	}
	return nil
}

// better reports whether a is strictly preferred over b: a proto condition
// beats none, then the longer path_beg, then an ssl condition beats none.
func better(a, b *Route) bool {
	if (a.Proto != ProtoAny) != (b.Proto != ProtoAny) {
		return a.Proto != ProtoAny
	}
	if len(a.PathBeg) != len(b.PathBeg) {
		return len(a.PathBeg) > len(b.PathBeg)
	}
	return a.SSL != SSLAny && b.SSL == SSLAny
}

// Routes returns all routes in file order.
func (t *Table) Routes() []*Route { return append([]*Route(nil), t.routes...) }

// Len returns the number of routes.
func (t *Table) Len() int { return len(t.routes) }

// ByID returns the route with id (explicit or default). Ids used by more
// than one route are not found.
func (t *Table) ByID(id string) (*Route, bool) {
	r, ok := t.byID[id]
	return r, ok
}

// DuplicateIDs returns the ids that more than one route uses.
func (t *Table) DuplicateIDs() []string {
	var out []string
	for id := range t.dupIDs {
		out = append(out, id)
	}
	return out
}

// Match returns the route for a request. host may carry a port (ignored)
// and any case; path is the request path as sent (percent-encoded). A host
// that has routes of its own never falls back to the "*" routes.
func (t *Table) Match(host, path string, isWebSocket, isTLS bool) (*Route, bool) {
	cands, ok := t.byDomain[normalizeHost(host)]
	if !ok {
		cands = t.any
	}
	proto := ProtoHTTP
	if isWebSocket {
		proto = ProtoWS
	}
	for _, r := range cands {
		if r.Proto != ProtoAny && r.Proto != proto {
			continue
		}
		if r.SSL == SSLYes && !isTLS || r.SSL == SSLNo && isTLS {
			continue
		}
		if !strings.HasPrefix(path, r.PathBeg) {
			continue
		}
		return r, true
	}
	return nil, false
}

func normalizeHost(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	return strings.ToLower(host)
}
