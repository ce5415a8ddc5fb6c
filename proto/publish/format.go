package publish

import (
	"encoding/json"
	"fmt"

	// json-patch/v5 is the maintained RFC 6902 implementation most Go
	// projects use (Kubernetes among them); it passes the RFC's test suite,
	// and writing our own patcher would be a second, less-tested copy of it.
	jsonpatch "github.com/evanphx/json-patch/v5"

	"github.com/pushpin-go/pushpin/proto/grip"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// Action is a format's `action`.
type Action int

// Actions (publish.md §1.1-1.3).
const (
	ActionSend    Action = iota // deliver the content (default)
	ActionHint                  // re-fetch from the backend / next link
	ActionClose                 // end the stream or WebSocket
	ActionRefresh               // WebSocket-over-HTTP: make the connection request the backend
)

func (a Action) String() string {
	switch a {
	case ActionHint:
		return "hint"
	case ActionClose:
		return "close"
	case ActionRefresh:
		return "refresh"
	}
	return "send"
}

// HTTPResponse is the `http-response` format, for response holds. Its
// fields are final: Reason is defaulted and Grip-* headers are gone, so a
// fan-out only needs Render per held request when the format patches or
// merges over that request's own response.
type HTTPResponse struct {
	Action Action
	Code   int
	Reason string
	// Headers are the published headers minus Grip-*; they replace
	// same-named headers of the held response.
	Headers zhttp.Headers
	// Remove lists header names (from a published Grip-Expose-Headers)
	// that are removed from the held response [obs].
	Remove []string
	Body   []byte
	// BodyPatch, when HasBodyPatch, is applied to the held response's
	// original body instead of sending Body.
	BodyPatch    jsonpatch.Patch
	HasBodyPatch bool
	ContentFilters
}

// HTTPStream is the `http-stream` format: Content is appended verbatim.
type HTTPStream struct {
	Action  Action
	Content []byte
	ContentFilters
}

// WSMessage is the `ws-message` format.
type WSMessage struct {
	Action  Action
	Type    grip.MessageType // set for ActionSend
	Content []byte
	// Code and Reason are the close frame for ActionClose; Code is -1 when
	// not given.
	Code   int
	Reason string
	ContentFilters
}

// ContentFilters is a format's `content-filters`: when Has, the list must
// equal the subscription's content filters (grip.md §8).
type ContentFilters struct {
	Filters    []string
	HasFilters bool
}

// Render builds the response a held request receives for this publish,
// from the response the backend originally gave it (grip.md §6.2):
// published headers replace same-named ones, names in Remove are dropped,
// Content-Length is dropped (the sender recomputes it), and the body is
// Body or BodyPatch applied to orig.Body.
func (r *HTTPResponse) Render(orig grip.Response) (grip.Response, error) {
	out := grip.Response{Code: r.Code, Reason: r.Reason, Body: r.Body}
	h := orig.Headers.Clone().Del("Content-Length")
	for _, x := range r.Headers {
		h = h.Del(x.Name)
	}
	h = append(h, r.Headers...)
	for _, name := range r.Remove {
		h = h.Del(name)
	}
	out.Headers = h
	if r.HasBodyPatch {
		b, err := r.BodyPatch.Apply(orig.Body)
		if err != nil {
			return grip.Response{}, fmt.Errorf("applying body-patch: %w", err)
		}
		out.Body = b
	}
	return out, nil
}

func parseAction(m map[string]any, pn string) (Action, error) {
	s, has, err := getString(m, pn, "action", false)
	if err != nil {
		return 0, err
	}
	switch {
	case !has || s == "send":
		return ActionSend, nil
	case s == "hint":
		return ActionHint, nil
	case s == "close":
		return ActionClose, nil
	case s == "refresh":
		return ActionRefresh, nil
	}
	// Pushpin 1.36 reports an unknown action with an empty message.
	return 0, formatErr("")
}

func parseContentFilters(m map[string]any, pn string) (ContentFilters, error) {
	v, ok := m["content-filters"]
	if !ok {
		return ContentFilters{}, nil
	}
	l, ok := v.([]any)
	if !ok {
		return ContentFilters{}, wrongType(pn, "content-filters")
	}
	cf := ContentFilters{HasFilters: true, Filters: make([]string, 0, len(l))}
	for _, x := range l {
		s, ok := asString(x)
		if !ok {
			return ContentFilters{}, formatErr("content-filters contains element with wrong type")
		}
		cf.Filters = append(cf.Filters, s)
	}
	return cf, nil
}

func (s src) parseHTTPResponse(v any) (*HTTPResponse, error) {
	const pn = "'http-response'"
	m, ok := asMap(v)
	if !ok {
		return nil, formatErr(pn + " is not an object")
	}
	act, err := parseAction(m, pn)
	if err != nil {
		return nil, err
	}
	out := &HTTPResponse{Action: act}
	if act != ActionSend {
		return out, nil
	}
	out.Code = 200
	if v, ok := m["code"]; ok {
		c, ok := asInt(v)
		if !ok {
			return nil, wrongType(pn, "code")
		}
		if c < 0 || c > 999 {
			return nil, formatErr(pn + " contains 'code' with invalid value")
		}
		out.Code = c
	}
	reason, _, err := getString(m, pn, "reason", false)
	if err != nil {
		return nil, err
	}
	if reason == "" {
		reason = grip.StatusReason(out.Code)
	}
	out.Reason = reason
	if v, ok := m["headers"]; ok {
		h, err := parseHeaders(v, pn)
		if err != nil {
			return nil, err
		}
		out.Remove = grip.ListValues(h, "Grip-Expose-Headers")
		out.Headers = grip.StripGripHeaders(h)
	}
	if out.ContentFilters, err = parseContentFilters(m, pn); err != nil {
		return nil, err
	}
	if _, ok := m["body-bin"]; ok && s.json {
		b, _, err := getString(m, pn, "body-bin", false)
		if err != nil {
			return nil, err
		}
		out.Body = grip.DecodeBase64(b)
	} else if v, ok := m["body"]; ok {
		b, ok := asBytes(v)
		if !ok {
			return nil, wrongType(pn, "body")
		}
		out.Body = b
	} else if v, ok := m["body-patch"]; ok {
		l, ok := v.([]any)
		if !ok {
			return nil, wrongType(pn, "body-patch")
		}
		raw, err := json.Marshal(jsonStyle(l))
		if err != nil {
			return nil, wrongType(pn, "body-patch")
		}
		p, err := jsonpatch.DecodePatch(raw)
		if err != nil {
			return nil, wrongType(pn, "body-patch")
		}
		out.BodyPatch, out.HasBodyPatch = p, true
	} else if s.json {
		return nil, formatErr(pn + " does not contain 'body', 'body-bin', or 'body-patch'")
	} else {
		return nil, formatErr(pn + " does not contain 'body' or 'body-patch'")
	}
	return out, nil
}

func (s src) parseHTTPStream(v any) (*HTTPStream, error) {
	const pn = "'http-stream'"
	m, ok := asMap(v)
	if !ok {
		return nil, formatErr(pn + " is not an object")
	}
	act, err := parseAction(m, pn)
	if err != nil {
		return nil, err
	}
	out := &HTTPStream{Action: act}
	if act != ActionSend {
		return out, nil
	}
	if out.ContentFilters, err = parseContentFilters(m, pn); err != nil {
		return nil, err
	}
	if _, ok := m["content-bin"]; ok && s.json {
		b, _, err := getString(m, pn, "content-bin", false)
		if err != nil {
			return nil, err
		}
		out.Content = grip.DecodeBase64(b)
	} else if v, ok := m["content"]; ok {
		b, ok := asBytes(v)
		if !ok {
			return nil, wrongType(pn, "content")
		}
		out.Content = b
	} else if s.json {
		return nil, formatErr(pn + " does not contain 'content' or 'content-bin'")
	} else {
		return nil, formatErr(pn + " does not contain 'content'")
	}
	return out, nil
}

func (s src) parseWSMessage(v any) (*WSMessage, error) {
	const pn = "'ws-message'"
	m, ok := asMap(v)
	if !ok {
		return nil, formatErr(pn + " is not an object")
	}
	act, err := parseAction(m, pn)
	if err != nil {
		return nil, err
	}
	out := &WSMessage{Action: act, Code: -1}
	switch act {
	case ActionSend:
		return out, s.wsSend(m, out)
	case ActionClose:
		if v, ok := m["code"]; ok {
			c, ok := asInt(v)
			if !ok {
				return nil, wrongType(pn, "code")
			}
			if c < 0 {
				return nil, formatErr(pn + " contains 'code' with invalid value")
			}
			out.Code = c
		}
		if out.Reason, _, err = getString(m, pn, "reason", false); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s src) wsSend(m map[string]any, out *WSMessage) error {
	const pn = "'ws-message'"
	typ, has, err := getString(m, pn, "type", false)
	if err != nil {
		return err
	}
	if has {
		t, ok := grip.ParseMessageType(typ)
		if !ok {
			return formatErr(pn + " contains 'type' with unknown value")
		}
		out.Type = t
	}
	if out.ContentFilters, err = parseContentFilters(m, pn); err != nil {
		return err
	}
	if v, ok := m["content-bin"]; ok {
		if s.json {
			b, ok := v.(string)
			if !ok {
				return wrongType(pn, "content-bin")
			}
			out.Content = grip.DecodeBase64(b)
		} else {
			b, ok := v.([]byte)
			if !ok {
				return wrongType(pn, "content-bin")
			}
			out.Content = b
		}
		if out.Type == "" {
			out.Type = grip.MessageBinary
		}
	} else if v, ok := m["content"]; ok {
		b, ok := asBytes(v)
		if !ok {
			return wrongType(pn, "content")
		}
		out.Content = b
		if out.Type == "" {
			out.Type = grip.MessageText
		}
	} else if out.Type == "" || out.Type == grip.MessageText || out.Type == grip.MessageBinary {
		return formatErr(pn + " does not contain 'content' or 'content-bin'")
	}
	return nil
}

// parseHeaders reads `headers` as an object (emitted in key order) or a
// list of [name, value] pairs.
func parseHeaders(v any, pn string) (zhttp.Headers, error) {
	switch t := v.(type) {
	case []any:
		h := make(zhttp.Headers, 0, len(t))
		for _, e := range t {
			pair, ok := e.([]any)
			if !ok {
				return nil, formatErr("headers contains element with wrong type")
			}
			if len(pair) != 2 {
				return nil, formatErr("headers contains list with wrong number of elements")
			}
			name, ok := asString(pair[0])
			if !ok {
				return nil, formatErr("header contains name element with wrong type")
			}
			val, ok := asString(pair[1])
			if !ok {
				return nil, formatErr("header contains value element with wrong type")
			}
			h = append(h, zhttp.Header{Name: name, Value: val})
		}
		return h, nil
	case map[string]any:
		h := make(zhttp.Headers, 0, len(t))
		for _, k := range sortedKeys(t) {
			val, ok := asString(t[k])
			if !ok {
				return nil, formatErr(fmt.Sprintf("headers contains '%s' with wrong type", k))
			}
			h = append(h, zhttp.Header{Name: k, Value: val})
		}
		return h, nil
	}
	return nil, wrongType(pn, "headers")
}
