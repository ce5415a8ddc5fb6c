package proxy

import (
	"strings"

	"github.com/pushpin-go/pushpin/proto/zrpc"
)

// onCommand runs in the command goroutine, which owns the ROUTER bound on
// [proxy] command_spec (the handler's DEALER proxy_command_spec connects):
// zrpc requests `[routing ids…, "", request]`, answered on the same
// socket with the same envelope (zhttp.md §11).
func (p *Proxy) onCommand(msg [][]byte) {
	env, req, ok := zrpc.SplitEnvelope(msg)
	if !ok {
		p.log.Warn().Int("frames", len(msg)).Msg("command: bad envelope, dropped")
		return
	}
	out := append(append(make([][]byte, 0, len(env)+1), env...), p.command(req))
	if err := p.cmdSock.Send(out...); err != nil {
		p.log.Warn().Err(err).Msg("command: sending reply")
	}
}

// command runs one zrpc request and returns the encoded response.
func (p *Proxy) command(req []byte) []byte {
	r, err := zrpc.ParseRequest(req)
	if err != nil {
		return zrpc.Reply(nil, false, "bad-format", nil)
	}
	id, args := r.ID, r.Args
	switch r.Method {
	case "refresh":
		cid, ok := args["cid"].([]byte)
		if !ok {
			return zrpc.Reply(id, false, "bad-format", nil)
		}
		s := p.wsCids.get(string(cid))
		if s == nil {
			return zrpc.Reply(id, false, "item-not-found", nil)
		}
		// WOH: a request to the backend now; passthrough: nothing to do.
		s.with(func() {
			if s.be != nil {
				s.be.refresh()
			}
		})
		return zrpc.Reply(id, true, "", nil)
	case "conncheck":
		ids, ok := args["ids"].([]any)
		if !ok {
			return zrpc.Reply(id, false, "bad-format", nil)
		}
		out := []any{}
		for _, x := range ids {
			b, ok := x.([]byte)
			if !ok {
				return zrpc.Reply(id, false, "bad-format", nil)
			}
			if p.connAlive(string(b)) {
				out = append(out, b)
			}
		}
		return zrpc.Reply(id, true, "", out)
	}
	return zrpc.Reply(id, false, "method-not-found", nil)
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
