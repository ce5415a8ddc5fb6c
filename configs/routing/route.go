package routing

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// SSL is the ssl= condition of a route.
type SSL int

// Values of SSL.
const (
	SSLAny SSL = iota // no ssl= prop
	SSLYes
	SSLNo
)

// Proto is the proto= condition of a route.
type Proto int

// Values of Proto.
const (
	ProtoAny Proto = iota
	ProtoHTTP
	ProtoWS
)

// Header is one header= prop.
type Header struct{ Name, Value string }

// Route is one parsed routes line.
type Route struct {
	ID     string // explicit id= or the default id (see DefaultID)
	HasID  bool   // id= was given
	Source string // file name or "--route"
	Line   int
	// Domain is the lowercased host, "*" for any host, or "" for a route
	// reachable only by id.
	Domain          string
	Proto           Proto
	SSL             SSL
	PathBeg         string
	SigIss          string
	SigKey          string
	Prefix          string // channel prefix
	OrigHeaders     bool
	AsHost          string
	PathRem         int
	ReplaceBeg      string
	HasReplaceBeg   bool
	Headers         []Header
	Debug           bool
	AutoCrossOrigin bool
	JSONPMode       string // "extended" (default) or "basic"
	JSONPCallback   string // default "callback"
	JSONPBody       string
	JSONPDefCB      string
	JSONPDefMethod  string // default GET (extended) / POST (basic)
	Session         bool
	SockJS          string
	SockJSAsPath    string
	NoGrip          bool
	Targets         []Target
	// Unknown lists condition props Pushpin ignores; worth a warning.
	Unknown []string
	// NotBuilt lists the condition and target props given that Pushpin
	// acts on and we do not yet (notBuiltProps); worth a warning.
	NotBuilt []string
}

// notBuiltProps are route props that parse (the table is Pushpin's) but
// whose behaviour is not built yet: CORS and JSON-P (aco, jsonp_*),
// original-header marking, the session feature, SockJS, and WebSocket
// targets' over_http/one_event.
var notBuiltProps = map[string]bool{
	"orig_headers": true, "aco": true, "jsonp_mode": true, "jsonp_cb": true, "jsonp_body": true,
	"jsonp_defcb": true, "jsonp_defmethod": true, "session": true, "sockjs": true, "sockjs_as_path": true,
	"over_http": true, "one_event": true,
}

// TargetType is the kind of a route target.
type TargetType int

// Values of TargetType.
const (
	TargetHTTP     TargetType = iota // host:port
	TargetTest                       // built-in test handler
	TargetZHTTP                      // zhttp/<base spec>
	TargetZHTTPReq                   // zhttpreq/<spec>
)

// Target is one backend of a route; later targets are failovers.
type Target struct {
	Type             TargetType
	Host             string // TargetHTTP
	Port             int    // TargetHTTP
	Spec             string // TargetZHTTP base / TargetZHTTPReq spec
	SSL              bool
	Untrusted        bool
	TrustConnectHost bool
	Insecure         bool
	HostHeader       string // host=
	Subscriptions    []string
	OverHTTP         bool
	OneEvent         bool
	IPCFileMode      int // -1 when unset
	Unknown          []string
}

// DefaultID is the id Pushpin 1.36 gives a route without id=:
// <domain|*>,<proto|*>,<ssl|*>,<path_beg|*>. It keeps 1.36's bug of writing
// "no-ssl" for ssl=yes and "ssl" for ssl=no, because the id shows up in logs
// and stats that users may already parse. Matching is not affected.
func DefaultID(domain string, proto Proto, ssl SSL, pathBeg string) string {
	parts := []string{"*", "*", "*", "*"}
	if domain != "" {
		parts[0] = domain
	}
	switch proto {
	case ProtoHTTP:
		parts[1] = "http"
	case ProtoWS:
		parts[1] = "ws"
	}
	switch ssl {
	case SSLYes:
		parts[2] = "no-ssl"
	case SSLNo:
		parts[2] = "ssl"
	}
	if pathBeg != "" {
		parts[3] = pathBeg
	}
	return strings.Join(parts, ",")
}

// parseLine returns nil, nil for blank and comment lines.
func parseLine(line string) (*Route, error) {
	secs, err := tokenize(line)
	if err != nil || len(secs) == 0 {
		return nil, err
	}
	if len(secs) < 2 {
		return nil, ErrNoTargets
	}
	r := &Route{JSONPMode: "extended", JSONPCallback: "callback"}
	cond := secs[0]
	if cond.hasValue {
		r.Domain = strings.ToLower(cond.value)
		if r.Domain == "" {
			return nil, errors.New("empty domain")
		}
		// Request hosts are compared without their port, so a domain with
		// one could never match; say so instead of silently never routing.
		if strings.HasPrefix(r.Domain, "[") && strings.HasSuffix(r.Domain, "]") {
			r.Domain = r.Domain[1 : len(r.Domain)-1]
		}
		if strings.Contains(r.Domain, ":") && net.ParseIP(r.Domain) == nil {
			return nil, fmt.Errorf("domain %q: want a host name without port", cond.value)
		}
	}
	if err := r.applyProps(cond.props); err != nil {
		return nil, err
	}
	if r.Domain == "" && !r.HasID {
		return nil, ErrNoID
	}
	if (r.SigIss == "") != (r.SigKey == "") {
		return nil, errors.New("sig_iss and sig_key must be given together")
	}
	if !r.HasID {
		d := r.Domain
		if d == "*" {
			d = ""
		}
		r.ID = DefaultID(d, r.Proto, r.SSL, r.PathBeg)
	}
	for _, s := range secs[1:] {
		t, err := parseTarget(s)
		if err != nil {
			return nil, err
		}
		r.Targets = append(r.Targets, t)
	}
	for _, s := range secs {
		for _, p := range s.props {
			if notBuiltProps[p.name] && !slices.Contains(r.NotBuilt, p.name) {
				r.NotBuilt = append(r.NotBuilt, p.name)
			}
		}
	}
	return r, nil
}

func (r *Route) applyProps(props []prop) error {
	for _, p := range props {
		v := p.value
		switch p.name {
		case "proto":
			switch v {
			case "http":
				r.Proto = ProtoHTTP
			case "ws":
				r.Proto = ProtoWS
			default:
				return fmt.Errorf("proto=%q: want http or ws", v)
			}
		case "ssl":
			switch v {
			case "yes":
				r.SSL = SSLYes
			case "no":
				r.SSL = SSLNo
			default:
				return fmt.Errorf("ssl=%q: want yes or no", v)
			}
		case "path_beg":
			r.PathBeg = v
		case "id":
			if v == "" {
				return errors.New("empty id")
			}
			r.ID, r.HasID = v, true
		case "sig_iss":
			r.SigIss = v
		case "sig_key":
			r.SigKey = v
		case "prefix":
			r.Prefix = v
		case "orig_headers":
			r.OrigHeaders = true
		case "as_host":
			r.AsHost = v
		case "path_rem":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fmt.Errorf("path_rem=%q: want a non-negative integer", v)
			}
			r.PathRem = n
		case "replace_beg":
			r.ReplaceBeg, r.HasReplaceBeg = v, true
		case "header":
			name, val, ok := strings.Cut(v, ":")
			if !ok || strings.TrimSpace(name) == "" {
				return fmt.Errorf("header=%q: want Name:Value", v)
			}
			r.Headers = append(r.Headers, Header{Name: strings.TrimSpace(name), Value: strings.TrimSpace(val)})
		case "debug":
			r.Debug = true
		case "aco":
			r.AutoCrossOrigin = true
		case "jsonp_mode":
			if v != "basic" && v != "extended" {
				return fmt.Errorf("jsonp_mode=%q: want basic or extended", v)
			}
			r.JSONPMode = v
		case "jsonp_cb":
			r.JSONPCallback = v
		case "jsonp_body":
			r.JSONPBody = v
		case "jsonp_defcb":
			r.JSONPDefCB = v
		case "jsonp_defmethod":
			r.JSONPDefMethod = v
		case "session":
			r.Session = true
		case "sockjs":
			r.SockJS = v
		case "sockjs_as_path":
			r.SockJSAsPath = v
		case "no_grip":
			r.NoGrip = true
		default:
			r.Unknown = append(r.Unknown, p.name)
		}
	}
	if r.JSONPDefMethod == "" {
		r.JSONPDefMethod = "GET"
		if r.JSONPMode == "basic" {
			r.JSONPDefMethod = "POST"
		}
	}
	return nil
}

func parseTarget(s section) (Target, error) {
	t := Target{IPCFileMode: -1}
	v := s.value
	switch {
	case !s.hasValue || v == "":
		return t, errors.New("target without a value")
	case v == "test":
		t.Type = TargetTest
	case strings.HasPrefix(v, "zhttp/"):
		t.Type, t.Spec = TargetZHTTP, v[len("zhttp/"):]
	case strings.HasPrefix(v, "zhttpreq/"):
		t.Type, t.Spec = TargetZHTTPReq, v[len("zhttpreq/"):]
	default:
		host, port, ok := strings.Cut(v, ":")
		n, err := strconv.Atoi(port)
		if !ok || host == "" || err != nil || n < 1 || n > 65535 {
			return t, fmt.Errorf("target %q: want host:port, test, zhttp/<spec> or zhttpreq/<spec>", v)
		}
		t.Type, t.Host, t.Port = TargetHTTP, host, n
	}
	if (t.Type == TargetZHTTP || t.Type == TargetZHTTPReq) && t.Spec == "" {
		return t, fmt.Errorf("target %q: missing zmq spec", v)
	}
	for _, p := range s.props {
		switch p.name {
		case "ssl":
			t.SSL = true
		case "untrusted":
			t.Untrusted = true
		case "trust_connect_host":
			t.TrustConnectHost = true
		case "insecure":
			t.Insecure = true
		case "host":
			t.HostHeader = p.value
		case "sub":
			if p.value == "" {
				return t, errors.New("sub= needs a channel")
			}
			t.Subscriptions = append(t.Subscriptions, p.value)
		case "over_http":
			t.OverHTTP = true
		case "one_event":
			t.OneEvent = true
		case "ipc_file_mode":
			n, err := strconv.ParseUint(p.value, 8, 32)
			if err != nil || n > 0o7777 {
				return t, fmt.Errorf("ipc_file_mode=%q: want an octal mode", p.value)
			}
			t.IPCFileMode = int(n)
		default:
			t.Unknown = append(t.Unknown, p.name)
		}
	}
	return t, nil
}
