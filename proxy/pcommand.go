package proxy

import (
	"strings"

	ts "github.com/pushpin-go/pushpin/proto/tnetstring"
)

// onCommand runs in the command goroutine, which owns the ROUTER bound on
// [proxy] command_spec (the handler's DEALER proxy_command_spec connects):
// zrpc requests `[routing ids…, "", request]`, answered on the same
// socket with the same envelope (zhttp.md §11).
func (p *Proxy) onCommand(msg [][]byte) {
	sep := -1
	for i, f := range msg {
		if len(f) == 0 {
			sep = i
			break
		}
	}
	if sep < 0 || sep != len(msg)-2 {
		p.log.Warn().Int("frames", len(msg)).Msg("command: bad envelope, dropped")
		return
	}
	resp := p.command(msg[len(msg)-1])
	out := append(append(make([][]byte, 0, sep+2), msg[:sep+1]...), resp)
	if err := p.cmdSock.Send(out...); err != nil {
		p.log.Warn().Err(err).Msg("command: sending reply")
	}
}

// command runs one zrpc request and returns the encoded response.
func (p *Proxy) command(req []byte) []byte {
	v, err := ts.Decode(req)
	m, ok := v.(map[string]any)
	if err != nil || !ok {
		return zrpcReply(nil, false, "bad-format", nil)
	}
	id := m["id"]
	method, _ := m["method"].([]byte)
	args, _ := m["args"].(map[string]any)
	switch string(method) {
	case "refresh":
		cid, ok := args["cid"].([]byte)
		if !ok {
			return zrpcReply(id, false, "bad-format", nil)
		}
		s := p.wsCids.get(string(cid))
		if s == nil {
			return zrpcReply(id, false, "item-not-found", nil)
		}
		// WOH: a request to the backend now; passthrough: nothing to do.
		s.with(func() {
			if s.be != nil {
				s.be.refresh()
			}
		})
		return zrpcReply(id, true, "", nil)
	case "conncheck":
		ids, ok := args["ids"].([]any)
		if !ok {
			return zrpcReply(id, false, "bad-format", nil)
		}
		out := []any{}
		for _, x := range ids {
			b, ok := x.([]byte)
			if !ok {
				return zrpcReply(id, false, "bad-format", nil)
			}
			if p.connAlive(string(b)) {
				out = append(out, b)
			}
		}
		return zrpcReply(id, true, "", out)
	}
	return zrpcReply(id, false, "method-not-found", nil)
}

// connAlive reports whether a connection id names a live session: a
// WebSocket cid, or "<sender>:<id>" of an HTTP session.
func (p *Proxy) connAlive(id string) bool {
	if p.wsCids.get(id) != nil {
		return true
	}
	if i := strings.IndexByte(id, ':'); i > 0 {
		return p.sessions.get(clientKey(id[:i], id[i+1:])) != nil
	}
	return false
}

func zrpcReply(id any, ok bool, condition string, value any) []byte {
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
