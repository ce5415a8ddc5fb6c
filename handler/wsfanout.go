package handler

// WebSocket fan-out: a ws-message publish delivered to the WebSocket
// sessions of its channel as ws-control `send` (or `close`) items.

import (
	"slices"
	"strconv"
	"strings"

	"github.com/pushpin-go/pushpin/proto/publish"
	ts "github.com/pushpin-go/pushpin/proto/tnetstring"
	"github.com/pushpin-go/pushpin/proto/wscontrol"
)

const (
	// wsMaxCIDs bounds the sessions one multi-send item names (its cid
	// plus cids), and wsMaxCIDBytes their encoded size, so no item grows
	// with the channel (10,000 sessions of ~26-byte cids make 6 items,
	// sent in one ~270 KB packet; packets are cut at wsMaxPacket).
	wsMaxCIDs     = 2048
	wsMaxCIDBytes = 64 << 10
	// wsMaxPacket bounds the items of one packet (bytes; a packet always
	// takes at least one item): per-session items each carry the whole
	// message, so 128 items of a big message would make one huge frame.
	wsMaxPacket = 1 << 20
)

// wsEncoder builds the packets of one publish. The fields every item of
// the publish shares (type, content-type, message, or the close code and
// reason) are encoded once, in tail; each item adds only its cid (and, for
// a multi-send item, its cids) in front of a copy of them.
type wsEncoder struct {
	out   func(frame []byte)
	tail  []byte
	items []byte // encoded items of the packet being built
	n     int    // items in items
	cids  []string
	cidsN int // encoded size of cids
}

// wsPublish delivers a ws-message item to the channel's WebSocket
// sessions. Sessions whose proxy takes multi-send items (ours: `here`
// carried multi-send) share one send item per wsMaxCIDs sessions, so the
// message crosses to the proxy about once per publish; the others
// (Pushpin's proxy) get an item each, MaxItems a packet, as Pushpin sends
// them: published messages go without `queue` (websocket-over-http.md §6).
func (e *engine) wsPublish(it *publish.Item) {
	c := e.wsHub[it.Channel]
	if c == nil || e.wsOut == nil {
		return
	}
	m := it.WSMessage
	enc := &e.wsEnc
	enc.out = e.wsOut
	enc.tail = enc.tail[:0]
	multiOK := false
	switch m.Action {
	case publish.ActionSend:
		k := wsKindOf(m.Type)
		if k == 0 {
			return
		}
		enc.tail = appendSendTail(enc.tail, k, m.Content)
		multiOK = true
	case publish.ActionClose:
		enc.tail = ts.AppendString(ts.AppendString(enc.tail, "type"), string(wscontrol.Close))
		if m.Code >= 0 {
			enc.tail = ts.AppendInt(ts.AppendString(enc.tail, "code"), int64(m.Code))
		}
		if m.Reason != "" {
			enc.tail = ts.AppendString(ts.AppendString(enc.tail, "reason"), m.Reason)
		}
	default:
		return // hint and refresh mean nothing to a WebSocket (as Pushpin)
	}
	n := 0
	for s := range c.subs {
		if s.ended || !wsDeliver(s, it) {
			continue
		}
		n++
		if multiOK && s.multi {
			enc.addCID(s.cid)
			continue
		}
		enc.item(s.cid, nil)
	}
	enc.flushCIDs()
	enc.flush()
	e.log.Debug().Str("channel", it.Channel).Int("receivers", n).Msg("relayed ws-message")
}

// appendSendTail appends the fields of a send item after its cid(s), in
// the codec's order.
func appendSendTail(b []byte, k wsKind, msg []byte) []byte {
	b = ts.AppendString(ts.AppendString(b, "type"), string(wscontrol.Send))
	b = ts.AppendString(ts.AppendString(b, "content-type"), k.String())
	return ts.AppendBytes(ts.AppendString(b, "message"), msg)
}

// wsDeliver applies the subscription's filters (grip.md §8) to a publish
// for s. A format's content-filters must equal the subscription's content
// filters, else the item is skipped, as Pushpin does for WebSockets. The
// content filters themselves (build-id, var-subst) are not applied: the
// message goes unchanged.
func wsDeliver(s *wsSession, it *publish.Item) bool {
	var filters []string
	for i := range s.subs {
		if s.subs[i].ch.name == it.Channel {
			filters = s.subs[i].filters
			break
		}
	}
	m := it.WSMessage
	if len(filters) == 0 {
		return !m.HasFilters || len(m.Filters) == 0
	}
	if m.HasFilters {
		var content []string
		for _, f := range filters {
			if f == "build-id" || f == "var-subst" {
				content = append(content, f)
			}
		}
		if !slices.Equal(content, m.Filters) {
			return false
		}
	}
	for _, f := range filters {
		switch f {
		case "skip-self":
			user, sender := s.metaValue("user"), it.Meta["sender"]
			if user != "" && user == sender {
				return false
			}
		case "skip-users":
			user := s.metaValue("user")
			if user == "" {
				continue
			}
			for _, u := range strings.Split(it.Meta["skip_users"], ",") {
				if strings.TrimSpace(u) == user {
					return false
				}
			}
		case "require-sub":
			// Pushpin 1.36 drops every such WebSocket delivery (it looks
			// the channel up in ids it never fills in for WebSockets); we
			// deliver to sessions that hold the required channel.
			if rs := it.Meta["require_sub"]; rs != "" && !s.subscribed(rs) {
				return false
			}
		}
	}
	return true
}

// addCID lists a multi-send session for the publish's shared send item.
func (enc *wsEncoder) addCID(cid string) {
	enc.cids = append(enc.cids, cid)
	enc.cidsN += len(cid) + 12
	if len(enc.cids) >= wsMaxCIDs || enc.cidsN >= wsMaxCIDBytes {
		enc.flushCIDs()
	}
}

// flushCIDs encodes the listed multi-send sessions as one item: the first
// is its cid, the others its cids.
func (enc *wsEncoder) flushCIDs() {
	if len(enc.cids) == 0 {
		return
	}
	enc.item(enc.cids[0], enc.cids[1:])
	clear(enc.cids)
	enc.cids, enc.cidsN = enc.cids[:0], 0
}

// item appends one item for cid (and cids) with the shared tail, writing
// its length prefix up front rather than shifting the message bytes.
func (enc *wsEncoder) item(cid string, cids []string) {
	if enc.n > 0 && (enc.n >= wscontrol.MaxItems || len(enc.items)+len(enc.tail) > wsMaxPacket) {
		enc.flush()
	}
	head := tsStrLen("cid") + tsStrLen(cid)
	list := 0
	if len(cids) > 0 {
		for _, c := range cids {
			list += tsStrLen(c)
		}
		head += tsStrLen("cids") + tsLen(list)
	}
	b := strconv.AppendInt(enc.items, int64(head+len(enc.tail)), 10)
	b = append(b, ':')
	b = ts.AppendString(ts.AppendString(b, "cid"), cid)
	if len(cids) > 0 {
		b = ts.AppendString(b, "cids")
		b = append(strconv.AppendInt(b, int64(list), 10), ':')
		for _, c := range cids {
			b = ts.AppendString(b, c)
		}
		b = append(b, ts.TagList)
	}
	b = append(b, enc.tail...)
	b = append(b, ts.TagDict)
	enc.items = b
	enc.n++
}

// flush sends the items built so far as one packet, `{items: [...]}`,
// allocated at its exact size (the frame is queued, so it is not reused).
func (enc *wsEncoder) flush() {
	if enc.n == 0 {
		return
	}
	body := tsStrLen("items") + tsLen(len(enc.items))
	frame := make([]byte, 0, tsLen(body))
	frame = append(strconv.AppendInt(frame, int64(body), 10), ':')
	frame = ts.AppendString(frame, "items")
	frame = append(strconv.AppendInt(frame, int64(len(enc.items)), 10), ':')
	frame = append(frame, enc.items...)
	frame = append(frame, ts.TagList, ts.TagDict)
	enc.out(frame)
	if cap(enc.items) > 4*wsMaxPacket {
		enc.items = nil // a rare huge message must not stay pinned
	} else {
		enc.items = enc.items[:0]
	}
	enc.n = 0
}

// tsLen is the encoded size of a tnetstring element with an n-byte payload.
func tsLen(n int) int { return decimalLen(n) + 1 + n + 1 }

func tsStrLen(s string) int { return tsLen(len(s)) }

func decimalLen(n int) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}
