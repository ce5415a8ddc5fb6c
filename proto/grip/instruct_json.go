package grip

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// jsonState carries the header-form results the JSON form merges into.
type jsonState struct {
	in        *Instruct
	resp      *Response
	kaData    *[]byte
	kaTimeout *int
	kaSet     *bool
	kaMode    *KeepAliveMode
}

func (st *jsonState) parse(code int, body []byte) error {
	if code != 200 {
		return instructErr("response code for application/grip-instruct content must be 200")
	}
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		return instructErr("failed to parse application/grip-instruct content as JSON")
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return instructErr("instruct must be an object")
	}
	if v, ok := m["hold"]; ok {
		hold, ok := v.(map[string]any)
		if !ok {
			return instructErr("instruct contains 'hold' with wrong type")
		}
		if err := st.parseHold(hold); err != nil {
			return err
		}
	}
	// The backend's own headers and body never reach the client in the JSON
	// form; only "response" counts.
	st.resp.Headers = zhttp.Headers{}
	st.resp.Body = nil
	if v, ok := m["response"]; ok {
		r, ok := v.(map[string]any)
		if !ok {
			return instructErr("instruct contains 'response' with wrong type")
		}
		return st.parseResponse(r)
	}
	return nil
}

func (st *jsonState) parseHold(hold map[string]any) error {
	in := st.in
	mode, has, err := jsonString(hold, "hold", "mode")
	if err != nil {
		return err
	}
	in.Hold = HoldResponse
	if has {
		switch mode {
		case "response":
		case "stream":
			in.Hold = HoldStream
		default:
			return instructErr("hold 'mode' must be set to either 'response' or 'stream'")
		}
	}

	vch, ok := hold["channels"]
	if !ok {
		return instructErr("hold does not contain 'channels'")
	}
	chans, ok := vch.([]any)
	if !ok {
		return instructErr("hold contains 'channels' with wrong type")
	}
	for _, vc := range chans {
		cm, ok := vc.(map[string]any)
		if !ok {
			return instructErr("channel is not an object")
		}
		var c Channel
		name, has, err := jsonString(cm, "channel", "name")
		if err != nil {
			return err
		}
		if !has {
			return instructErr("channel does not contain 'name'")
		}
		c.Name = name
		if c.PrevID, _, err = jsonString(cm, "channel", "prev-id"); err != nil {
			return err
		}
		if vf, ok := cm["filters"]; ok {
			fl, ok := vf.([]any)
			if !ok {
				return instructErr("channel contains 'filters' with wrong type")
			}
			for _, f := range fl {
				s, ok := f.(string)
				if !ok {
					return instructErr("filters contains value with wrong type")
				}
				c.Filters = append(c.Filters, s)
			}
		}
		in.Channels = append(in.Channels, c)
	}

	if v, ok := hold["timeout"]; ok {
		t, ok := jsonInt(v)
		if !ok {
			return instructErr("hold contains 'timeout' with wrong type")
		}
		if t < 0 {
			return instructErr("hold contains 'timeout' with invalid value")
		}
		in.Timeout = t
	}

	if v, ok := hold["keep-alive"]; ok {
		ka, ok := v.(map[string]any)
		if !ok {
			return instructErr("hold contains 'keep-alive' with wrong type")
		}
		if err := st.parseKeepAlive(ka); err != nil {
			return err
		}
	}

	if v, ok := hold["meta"]; ok {
		mm, ok := v.(map[string]any)
		if !ok {
			return instructErr("hold contains 'meta' with wrong type")
		}
		for _, k := range sortedKeys(mm) {
			s, ok := mm[k].(string)
			if !ok {
				return instructErr(fmt.Sprintf("'meta' contains '%s' with wrong type", k))
			}
			if in.Meta == nil {
				in.Meta = map[string]string{}
			}
			in.Meta[k] = s
		}
	}
	return nil
}

func (st *jsonState) parseKeepAlive(ka map[string]any) error {
	if _, ok := ka["content-bin"]; ok {
		s, _, err := jsonString(ka, "keep-alive", "content-bin")
		if err != nil {
			return err
		}
		*st.kaData = DecodeBase64(s)
	} else if v, ok := ka["content"]; ok {
		s, ok := v.(string)
		if !ok {
			return instructErr("keep-alive contains 'content' with wrong type")
		}
		*st.kaData = []byte(s)
	}
	*st.kaTimeout = DefaultKeepAliveTimeout
	if v, ok := ka["timeout"]; ok {
		t, ok := jsonInt(v)
		if !ok {
			return instructErr("keep-alive contains 'timeout' with wrong type")
		}
		if t < 0 {
			return instructErr("keep-alive contains 'timeout' with invalid value")
		}
		*st.kaTimeout = t
	}
	// A JSON keep-alive has no mode of its own; without a Grip-Keep-Alive
	// header Pushpin runs it as a fixed interval (grip.md §5).
	if !*st.kaSet {
		*st.kaMode = KeepAliveInterval
	}
	*st.kaSet = true
	return nil
}

func (st *jsonState) parseResponse(r map[string]any) error {
	resp := st.resp
	if v, ok := r["code"]; ok {
		c, ok := jsonInt(v)
		if !ok {
			return instructErr("response contains 'code' with wrong type")
		}
		if c < 0 || c > 999 {
			return instructErr("response contains 'code' with invalid value")
		}
		resp.Code = c
		// A code given in JSON resets the reason to the code's default.
		resp.Reason = ""
	}
	reason, _, err := jsonString(r, "response", "reason")
	if err != nil {
		return err
	}
	if reason != "" {
		resp.Reason = reason
	}
	if v, ok := r["headers"]; ok {
		h, err := jsonHeaders(v, "response")
		if err != nil {
			return err
		}
		resp.Headers = h
	}
	if _, ok := r["body-bin"]; ok {
		s, _, err := jsonString(r, "response", "body-bin")
		if err != nil {
			return err
		}
		resp.Body = DecodeBase64(s)
	} else if v, ok := r["body"]; ok {
		s, ok := v.(string)
		if !ok {
			return instructErr("response contains 'body' with wrong type")
		}
		resp.Body = []byte(s)
	}
	return nil
}

// jsonHeaders reads `headers` as an object (emitted in key order, like
// Pushpin's QVariantMap) or a list of [name, value] pairs.
func jsonHeaders(v any, parent string) (zhttp.Headers, error) {
	switch t := v.(type) {
	case []any:
		h := make(zhttp.Headers, 0, len(t))
		for _, e := range t {
			pair, ok := e.([]any)
			if !ok {
				return nil, instructErr("headers contains element with wrong type")
			}
			if len(pair) != 2 {
				return nil, instructErr("headers contains list with wrong number of elements")
			}
			name, ok := pair[0].(string)
			if !ok {
				return nil, instructErr("header contains name element with wrong type")
			}
			val, ok := pair[1].(string)
			if !ok {
				return nil, instructErr("header contains value element with wrong type")
			}
			h = append(h, zhttp.Header{Name: name, Value: val})
		}
		return h, nil
	case map[string]any:
		h := make(zhttp.Headers, 0, len(t))
		for _, k := range sortedKeys(t) {
			val, ok := t[k].(string)
			if !ok {
				return nil, instructErr(fmt.Sprintf("headers contains '%s' with wrong type", k))
			}
			h = append(h, zhttp.Header{Name: k, Value: val})
		}
		return h, nil
	}
	return nil, instructErr(fmt.Sprintf("%s contains 'headers' with wrong type", parent))
}

// jsonString reads an optional string member; present reports whether it
// was there.
func jsonString(m map[string]any, parent, key string) (s string, present bool, err error) {
	v, ok := m[key]
	if !ok {
		return "", false, nil
	}
	s, ok = v.(string)
	if !ok {
		return "", true, instructErr(fmt.Sprintf("%s contains '%s' with wrong type", parent, key))
	}
	return s, true, nil
}

// jsonInt accepts what Qt's canConvert-to-int accepts from JSON: numbers
// (truncated) and strings of digits.
func jsonInt(v any) (int, bool) {
	switch t := v.(type) {
	case float64:
		if math.IsNaN(t) || t > math.MaxInt32 || t < math.MinInt32 {
			return 0, false
		}
		return int(t), true
	case string:
		return qtInt(t)
	case bool:
		if t {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
