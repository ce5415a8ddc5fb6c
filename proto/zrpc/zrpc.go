// Package zrpc frames Pushpin's internal RPCs (zhttp.md §11): the handler's
// command socket and the proxy's command socket. A request is a plain
// tnetstring {id?, method, args?}; the reply {id, success, condition?,
// value?}. On a ROUTER the request arrives as [routing ids…, "", request].
package zrpc

import (
	"errors"

	ts "github.com/pushpin-go/pushpin/proto/tnetstring"
)

// ErrBadRequest is returned for a request that is not a tnetstring dict.
var ErrBadRequest = errors.New("zrpc: request is not a dict")

// Request is one decoded call.
type Request struct {
	ID     any // echoed in the reply; nil if absent
	Method string
	Args   map[string]any
}

// ParseRequest decodes a request.
func ParseRequest(b []byte) (Request, error) {
	v, err := ts.Decode(b)
	m, ok := v.(map[string]any)
	if err != nil || !ok {
		return Request{}, ErrBadRequest
	}
	method, _ := m["method"].([]byte)
	args, _ := m["args"].(map[string]any)
	return Request{ID: m["id"], Method: string(method), Args: args}, nil
}

// Reply encodes a reply. value is sent when set, and always on success.
func Reply(id any, ok bool, condition string, value any) []byte {
	m := map[string]any{"success": ok}
	if id != nil {
		m["id"] = id
	}
	if condition != "" {
		m["condition"] = condition
	}
	if value != nil || ok {
		m["value"] = value
	}
	b, _ := ts.Encode(m)
	return b
}

// SplitEnvelope splits a message a ROUTER received into its envelope
// (routing ids and the empty delimiter, to send back in front of the
// reply) and the request; ok is false unless the delimiter is the frame
// before the last.
func SplitEnvelope(msg [][]byte) (env [][]byte, req []byte, ok bool) {
	sep := -1
	for i, f := range msg {
		if len(f) == 0 {
			sep = i
			break
		}
	}
	if sep < 0 || sep != len(msg)-2 {
		return nil, nil, false
	}
	return msg[:sep+1], msg[sep+1], true
}
