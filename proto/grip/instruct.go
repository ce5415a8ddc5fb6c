package grip

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// HoldMode says whether and how the handler holds the client request.
type HoldMode int

// Hold modes.
const (
	HoldNone     HoldMode = iota // no Grip-Hold: relay (or follow a next link)
	HoldResponse                 // long-polling: wait for one http-response publish
	HoldStream                   // streaming: send the response, then append http-stream publishes
)

func (m HoldMode) String() string {
	switch m {
	case HoldResponse:
		return "response"
	case HoldStream:
		return "stream"
	}
	return "none"
}

// KeepAliveMode says when keep-alive data is sent on a stream hold.
type KeepAliveMode int

// Keep-alive modes.
const (
	KeepAliveIdle     KeepAliveMode = iota // timer restarts after each sent publish (header default)
	KeepAliveInterval                      // fixed period (JSON instruct keep-alives)
)

func (m KeepAliveMode) String() string {
	if m == KeepAliveInterval {
		return "interval"
	}
	return "idle"
}

// Channel is one subscription requested by the backend, with the route
// prefix already prepended to Name.
type Channel struct {
	Name    string
	PrevID  string   // "" when none
	Filters []string // filter names in the order given
}

// KeepAlive is the stream keep-alive: Data (already decoded from its
// raw/cstring/base64 format) is written every Timeout seconds.
type KeepAlive struct {
	Data    []byte
	Timeout int // seconds, ≥ MinKeepAliveTimeout
	Mode    KeepAliveMode
}

// Response is an HTTP response head and body as the client should see it.
type Response struct {
	Code    int
	Reason  string
	Headers zhttp.Headers
	Body    []byte
}

// Instruct is everything a backend's GRIP response says.
type Instruct struct {
	Hold     HoldMode
	Channels []Channel
	// Timeout is the effective response-hold timeout in seconds (default
	// DefaultTimeout, at least MinTimeout). Stream holds ignore it.
	Timeout   int
	KeepAlive *KeepAlive // nil when none
	// Meta is the subscription meta (Grip-Set-Meta / hold.meta) used by filters.
	Meta map[string]string
	// NextLink is the Grip-Link rel=next URI as given (resolve it against
	// the request URI with ResolveLink); "" when none.
	NextLink        string
	NextLinkTimeout int    // seconds; meaningful when NextLink != ""
	GoneLink        string // Grip-Link rel=gone, "" when none
	// ExposeHeaders lists Grip-Expose-Headers names; when non-empty only these
	// headers were kept in Response.Headers.
	ExposeHeaders []string
	// Response is what the client gets: for a stream hold or no hold now,
	// for a response hold on timeout. Grip-* headers are removed,
	// Grip-Status and Grip-Expose-Headers applied, Reason defaulted.
	// Content-Length is left as the backend sent it; senders recompute it.
	Response Response
}

// Options carries the per-route settings ParseResponse applies.
type Options struct {
	// ChannelPrefix is the route's `prefix=`, prepended to every channel.
	ChannelPrefix string
	// MaxChannels is connection_subscription_max; channels past it are
	// ignored. 0 means no limit.
	MaxChannels int
}

// ParseResponse interprets a backend response as GRIP: the header form
// (grip.md §4) and, when Content-Type is application/grip-instruct, the JSON
// form merged over it (§5). Errors are *InstructError with Pushpin's text.
func ParseResponse(code int, reason string, headers zhttp.Headers, body []byte, opts Options) (*Instruct, error) {
	in := &Instruct{Timeout: -1}
	kaTimeout := -1
	var kaData []byte
	kaSet := false

	if headers.Has("Grip-Hold") {
		switch headers.Get("Grip-Hold") {
		case "response":
			in.Hold = HoldResponse
		case "stream":
			in.Hold = HoldStream
		default:
			return nil, instructErr("Grip-Hold must be set to either 'response' or 'stream'")
		}
	}

	for _, p := range ListParams(headers, "Grip-Channel", false) {
		if p.First() == "" {
			return nil, instructErr("failed to parse Grip-Channel")
		}
		c := Channel{Name: p.First()}
		c.PrevID, _ = p.Get("prev-id")
		for _, x := range p[1:] {
			if x.Name == "filter" {
				c.Filters = append(c.Filters, x.Value)
			}
		}
		if len(c.Filters) > MaxFilters {
			return nil, instructErr(fmt.Sprintf("too many filters for channel '%s'", c.Name))
		}
		in.Channels = append(in.Channels, c)
	}

	if headers.Has("Grip-Timeout") {
		t, ok := qtInt(headers.Get("Grip-Timeout"))
		if !ok {
			return nil, instructErr("failed to parse Grip-Timeout")
		}
		if t < 0 {
			return nil, instructErr("Grip-Timeout has invalid value")
		}
		in.Timeout = t
	}

	in.ExposeHeaders = ListValues(headers, "Grip-Expose-Headers")

	kaMode := KeepAliveIdle
	if p := SingleParams(headers, "Grip-Keep-Alive"); p != nil {
		val := p.First()
		if val == "" {
			return nil, instructErr("Grip-Keep-Alive cannot be empty")
		}
		switch mode, _ := p.Get("mode"); mode {
		case "", "idle":
		case "interval":
			kaMode = KeepAliveInterval
		default:
			return nil, instructErr(fmt.Sprintf("no such Grip-Keep-Alive mode '%s'", mode))
		}
		kaTimeout = DefaultKeepAliveTimeout
		if v, ok := p.Get("timeout"); ok {
			t, ok := qtInt(v)
			if !ok {
				return nil, instructErr("failed to parse Grip-Keep-Alive timeout value")
			}
			if t < 0 {
				return nil, instructErr("Grip-Keep-Alive timeout has invalid value")
			}
			kaTimeout = t
		}
		switch format, _ := p.Get("format"); format {
		case "", "raw":
			kaData = []byte(val)
		case "cstring":
			d, ok := unescapeCString(val)
			if !ok {
				return nil, instructErr("failed to parse Grip-Keep-Alive cstring format")
			}
			kaData = d
		case "base64":
			kaData = DecodeBase64(val)
		default:
			return nil, instructErr(fmt.Sprintf("no such Grip-Keep-Alive format '%s'", format))
		}
		kaSet = true
	}

	for _, p := range ListParams(headers, "Grip-Set-Meta", true) {
		if len(p) == 0 {
			return nil, instructErr("Grip-Set-Meta cannot be empty")
		}
		if in.Meta == nil {
			in.Meta = map[string]string{}
		}
		in.Meta[p[0].Name] = p[0].Value
	}

	resp := Response{Code: code, Reason: reason, Body: body}
	if status := headers.Get("Grip-Status"); status != "" {
		c, r, err := parseStatus(status)
		if err != nil {
			return nil, err
		}
		resp.Code, resp.Reason = c, r
	}

	if err := in.parseLinks(headers); err != nil {
		return nil, err
	}

	resp.Headers = clientHeaders(headers, in.ExposeHeaders)

	if isInstructType(headers) {
		st := jsonState{in: in, resp: &resp, kaData: &kaData, kaTimeout: &kaTimeout, kaSet: &kaSet, kaMode: &kaMode}
		if err := st.parse(code, body); err != nil {
			return nil, err
		}
	}

	if resp.Reason == "" {
		resp.Reason = StatusReason(resp.Code)
	}
	in.Response = resp

	if in.Timeout < 0 {
		in.Timeout = DefaultTimeout
	}
	in.Timeout = max(in.Timeout, MinTimeout)

	if kaSet && len(kaData) > 0 {
		in.KeepAlive = &KeepAlive{Data: kaData, Timeout: max(kaTimeout, MinKeepAliveTimeout), Mode: kaMode}
	}

	for i := range in.Channels {
		in.Channels[i].Name = opts.ChannelPrefix + in.Channels[i].Name
	}
	if opts.MaxChannels > 0 && len(in.Channels) > opts.MaxChannels {
		in.Channels = in.Channels[:opts.MaxChannels]
	}
	return in, nil
}

func (in *Instruct) parseLinks(headers zhttp.Headers) error {
	for _, p := range ListParams(headers, "Grip-Link", false) {
		if len(p) < 2 {
			continue
		}
		lp := p.First()
		if len(lp) <= 2 || lp[0] != '<' || lp[len(lp)-1] != '>' {
			return instructErr("failed to parse Grip-Link value")
		}
		link := lp[1 : len(lp)-1]
		if _, err := url.Parse(link); err != nil {
			return instructErr("Grip-Link contains invalid link")
		}
		switch rel, _ := p.Get("rel"); rel {
		case "next":
			in.NextLink = link
			in.NextLinkTimeout = DefaultNextLinkTimeout
			if v, ok := p.Get("timeout"); ok {
				t, ok := qtInt(v)
				if !ok {
					return instructErr("failed to parse Grip-Link timeout value")
				}
				if t < 0 {
					return instructErr("Grip-Link timeout has invalid value")
				}
				in.NextLinkTimeout = t
			}
		case "gone":
			in.GoneLink = link
		}
	}
	return nil
}

// ResolveLink resolves a Grip-Link URI against the URI of the request that
// produced it.
func ResolveLink(requestURI, link string) (string, error) {
	base, err := url.Parse(requestURI)
	if err != nil {
		return "", fmt.Errorf("parsing request uri: %w", err)
	}
	ref, err := url.Parse(link)
	if err != nil {
		return "", fmt.Errorf("parsing link: %w", err)
	}
	return base.ResolveReference(ref).String(), nil
}

func parseStatus(status string) (int, string, error) {
	codeStr, reason, _ := strings.Cut(status, " ")
	c, ok := qtInt(codeStr)
	if !ok || c < 0 || c > 999 {
		return 0, "", instructErr("Grip-Status contains invalid status code")
	}
	return c, reason, nil
}

// clientHeaders drops Grip-* headers and, when expose is non-empty, every
// header not listed in it (grip.md §4 [obs]: even Content-Type).
func clientHeaders(h zhttp.Headers, expose []string) zhttp.Headers {
	out := make(zhttp.Headers, 0, len(h))
	for _, x := range h {
		if IsGripHeader(x.Name) {
			continue
		}
		if len(expose) > 0 && !containsFold(expose, x.Name) {
			continue
		}
		out = append(out, x)
	}
	return out
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// ClientHead applies Grip-Status and Grip-Expose-Headers to a backend
// response head and strips Grip-* headers, without parsing the rest of the
// instruct. The proxy uses it when it sends an oversized stream-hold
// response itself (grip.md §6.3).
func ClientHead(code int, reason string, h zhttp.Headers) (int, string, zhttp.Headers, error) {
	if status := h.Get("Grip-Status"); status != "" {
		c, r, err := parseStatus(status)
		if err != nil {
			return 0, "", nil, err
		}
		code, reason = c, r
	}
	if reason == "" {
		reason = StatusReason(code)
	}
	return code, reason, clientHeaders(h, ListValues(h, "Grip-Expose-Headers")), nil
}

// qtInt parses like QByteArray::toInt: optional surrounding whitespace,
// optional sign, decimal, within int32.
func qtInt(s string) (int, bool) {
	v, err := strconv.ParseInt(trim(s), 10, 32)
	if err != nil {
		return 0, false
	}
	return int(v), true
}

// unescapeCString decodes the Grip-Keep-Alive cstring format: \\ \r \n \xHH;
// any other escaped character is dropped. A trailing backslash or a short or
// non-hex \x sequence is an error.
func unescapeCString(s string) ([]byte, bool) {
	out := make([]byte, 0, len(s))
	for n := 0; n < len(s); n++ {
		c := s[n]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if n+1 >= len(s) {
			return nil, false
		}
		n++
		switch s[n] {
		case '\\':
			out = append(out, '\\')
		case 'r':
			out = append(out, '\r')
		case 'n':
			out = append(out, '\n')
		case 'x':
			if n+2 >= len(s) {
				return nil, false
			}
			hi, lo := unhex(s[n+1]), unhex(s[n+2])
			n += 2
			if hi < 0 || lo < 0 {
				return nil, false
			}
			out = append(out, byte(hi<<4|lo))
		}
	}
	// Pushpin's unescape yields a null array when every byte was a dropped
	// escape, which it reports as a parse failure.
	return out, len(out) > 0
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
