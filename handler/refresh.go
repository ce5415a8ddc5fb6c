package handler

// The `refresh` command: make WebSocket-over-HTTP sessions call their
// backend now. The handler asks the proxy, which owns the sessions, with a
// zrpc `refresh` {cid} on a DEALER connected to proxy_command_spec, one
// cid after the other, as Pushpin's RefreshWorker does.

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	ts "github.com/pushpin-go/pushpin/proto/tnetstring"
	"github.com/pushpin-go/pushpin/proto/zmq"
	"github.com/pushpin-go/pushpin/proto/zrpc"
)

// proxyCallTimeout bounds one zrpc call to the proxy (Pushpin's
// PROXY_RPC_TIMEOUT).
const proxyCallTimeout = 10 * time.Second

// refreshJob is one refresh command waiting for the proxy.
type refreshJob struct {
	id   any // the command's zrpc id, echoed in the reply
	cids []string
	// ignoreErrors: a channel refresh goes on past a cid the proxy no
	// longer knows, and answers success (as Pushpin).
	ignoreErrors bool
	done         func(resp []byte) // hands the reply to the command loop; never blocks
}

// cmdReplies carries replies computed off the command loop (refresh) back
// to it: a list under a mutex, and a wake of its receive, so the goroutine
// that finishes a refresh never waits for the command loop.
type cmdReplies struct {
	mu   sync.Mutex
	msgs [][][]byte
	wake func()
}

func (c *cmdReplies) add(msg [][]byte) {
	c.mu.Lock()
	c.msgs = append(c.msgs, msg)
	c.mu.Unlock()
	c.wake()
}

func (c *cmdReplies) take() [][][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.msgs
	c.msgs = nil
	return m
}

// refreshCommand starts a `refresh` command (args: cid or channel); the
// reply goes to done once the proxy has answered. It returns the reply
// instead when it can answer at once (bad arguments, no proxy socket).
func (h *Handler) refreshCommand(id any, args map[string]any, done func([]byte)) []byte {
	if h.refreshJobs == nil {
		return zrpc.Reply(id, false, "service-unavailable", "no proxy_command_spec to reach the proxy")
	}
	j := &refreshJob{id: id, done: done}
	if v, ok := args["cid"]; ok {
		cid, ok := v.([]byte)
		if !ok {
			return zrpc.Reply(id, false, "bad-request", nil)
		}
		j.cids = []string{string(cid)}
		return h.submitRefresh(j)
	}
	v, ok := args["channel"]
	if !ok {
		return zrpc.Reply(id, false, "bad-request", nil)
	}
	ch, ok := v.([]byte)
	if !ok {
		return zrpc.Reply(id, false, "bad-request", nil)
	}
	j.ignoreErrors = true
	h.eng.post(func() {
		if c := h.eng.wsHub[string(ch)]; c != nil {
			for s := range c.subs {
				j.cids = append(j.cids, s.cid)
			}
		}
		if r := h.submitRefresh(j); r != nil {
			done(r)
		}
	})
	return nil
}

// submitRefresh queues j for the proxy command loop without waiting; a
// full queue answers at once.
func (h *Handler) submitRefresh(j *refreshJob) []byte {
	select {
	case h.refreshJobs <- j:
		return nil
	default:
		return zrpc.Reply(j.id, false, "service-unavailable", "too many refreshes in progress")
	}
}

// proxyCommandLoop owns the DEALER to the proxy's command socket and runs
// the refresh jobs one at a time.
func (h *Handler) proxyCommandLoop(ctx context.Context, sock *zmq.Socket, jobs <-chan *refreshJob) {
	defer sock.Close()
	var seq uint64
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-jobs:
			resp := zrpc.Reply(j.id, true, "", nil)
			for _, cid := range j.cids {
				seq++
				cond := h.proxyCall(ctx, sock, seq, "refresh", map[string]any{"cid": cid})
				if cond != "" && !j.ignoreErrors {
					resp = zrpc.Reply(j.id, false, cond, nil)
					break
				}
			}
			j.done(resp)
		}
	}
}

// proxyCall makes one zrpc call to the proxy and returns "" on success or
// the error condition ("timeout" when no answer came in time).
func (h *Handler) proxyCall(ctx context.Context, sock *zmq.Socket, seq uint64, method string, args map[string]any) string {
	id := []byte(h.id + "-" + strconv.FormatUint(seq, 10))
	req, err := ts.Encode(map[string]any{"id": id, "method": method, "args": args})
	if err != nil {
		return "bad-request"
	}
	deadline := time.Now().Add(proxyCallTimeout)
	for {
		err := sock.Send(nil, req) // DEALER to ROUTER: empty delimiter, then the request
		if err == nil {
			break
		}
		if !errors.Is(err, zmq.ErrTimeout) || ctx.Err() != nil || time.Now().After(deadline) {
			h.log.Warn().Err(err).Str("method", method).Msg("proxy command: sending request")
			return "timeout"
		}
	}
	for ctx.Err() == nil && time.Now().Before(deadline) {
		msg, err := sock.Recv()
		if err != nil {
			if errors.Is(err, zmq.ErrClosed) {
				return "timeout"
			}
			continue
		}
		v, err := ts.Decode(msg[len(msg)-1])
		m, ok := v.(map[string]any)
		if err != nil || !ok {
			h.log.Warn().Msg("proxy command: bad reply, ignored")
			continue
		}
		if rid, _ := m["id"].([]byte); string(rid) != string(id) {
			continue // the late answer to a call that timed out
		}
		if m["success"] == true {
			return ""
		}
		cond, _ := m["condition"].([]byte)
		if len(cond) == 0 {
			return "error"
		}
		return string(cond)
	}
	h.log.Warn().Str("method", method).Msg("proxy command: no answer in time")
	return "timeout"
}
