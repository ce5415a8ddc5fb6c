package handler

import (
	"context"
	"errors"

	"github.com/pushpin-go/pushpin/proto/publish"
	"github.com/pushpin-go/pushpin/proto/zmq"
	"github.com/pushpin-go/pushpin/proto/zrpc"
)

// subLoop owns the SUB publish input. It subscribes to a channel only while
// the channel has local subscribers, so an XPUB publisher sees exactly what
// is wanted. It takes the engine's changes between receives (the engine
// wakes a waiting receive), comparing each with what the socket is
// subscribed to: libzmq counts subscriptions, so the same one twice would
// need two unsubscribes.
func (h *Handler) subLoop(ctx context.Context, sub *zmq.Socket, changes *subChanges) {
	defer sub.Close()
	on := map[string]struct{}{}
	for ctx.Err() == nil {
		for ch, add := range changes.take() {
			_, was := on[ch]
			switch {
			case add && !was:
				sub.Subscribe(ch)
				on[ch] = struct{}{}
			case !add && was:
				sub.Unsubscribe(ch)
				delete(on, ch)
			}
		}
		msg, err := sub.Recv()
		if err != nil {
			if errors.Is(err, zmq.ErrClosed) {
				return
			}
			continue
		}
		if len(msg) != 2 {
			h.log.Warn().Int("frames", len(msg)).Msg("in sub: message must have 2 frames, dropped")
			continue
		}
		it, err := publish.ParseSubMessage(msg[0], msg[1])
		if err != nil {
			h.log.Warn().Err(err).Msg("received message with invalid format (in sub)")
			continue
		}
		h.publish([]publish.Item{it})
	}
}

// commandLoop owns the command socket (ROUTER, REP-compatible zrpc). Most
// commands are answered in place; a refresh waits for the proxy on another
// goroutine, whose reply comes back through replies (the receive is woken
// for it).
func (h *Handler) commandLoop(ctx context.Context, sock *zmq.Socket, replies *cmdReplies) {
	defer sock.Close()
	for ctx.Err() == nil {
		for _, r := range replies.take() {
			if err := sock.Send(r...); err != nil {
				h.log.Warn().Err(err).Msg("command: sending reply")
			}
		}
		msg, err := sock.Recv()
		if err != nil {
			if errors.Is(err, zmq.ErrClosed) {
				return
			}
			continue
		}
		env, req, ok := zrpc.SplitEnvelope(msg)
		if !ok {
			h.log.Warn().Int("frames", len(msg)).Msg("command: bad envelope, dropped")
			continue
		}
		env = append([][]byte{}, env...) // kept past the next receive
		resp := h.command(req, func(resp []byte) { replies.add(append(env, resp)) })
		if resp == nil {
			continue // answered later, through replies
		}
		if err := sock.Send(append(env, resp)...); err != nil {
			h.log.Warn().Err(err).Msg("command: sending reply")
		}
	}
}

// command runs one zrpc request and returns the encoded response, or nil
// when the response will be handed to later instead (refresh).
func (h *Handler) command(req []byte, later func([]byte)) []byte {
	r, err := zrpc.ParseRequest(req)
	if err != nil {
		return zrpc.Reply(nil, false, "bad-request", nil)
	}
	id, args := r.ID, r.Args
	switch r.Method {
	case "publish":
		items, err := publish.ParseItems(args)
		if err != nil {
			var pe *publish.Error
			text := err.Error()
			if errors.As(err, &pe) {
				text = pe.Text
			}
			return zrpc.Reply(id, false, "bad-request", text)
		}
		h.publish(items)
		return zrpc.Reply(id, true, "", nil)
	case "recover":
		// Pushpin re-announces its sessions and subscriptions; until that
		// is built, say so rather than answer success and do nothing.
		return zrpc.Reply(id, false, "not-supported", "recover is not supported yet")
	case "refresh":
		return h.refreshCommand(id, args, later)
	case "get-zmq-uris":
		hc := &h.cfg.Handler
		out := map[string]any{}
		if len(hc.CommandSpec) > 0 {
			out["command"] = hc.CommandSpec[0]
		}
		if len(hc.PushInSpec) > 0 {
			out["publish-pull"] = hc.PushInSpec[0]
		}
		if len(hc.PushInSubSpecs) > 0 && !hc.PushInSubConnect {
			out["publish-sub"] = hc.PushInSubSpecs[0]
		}
		return zrpc.Reply(id, true, "", out)
	}
	return zrpc.Reply(id, false, "method-not-found", nil)
}
