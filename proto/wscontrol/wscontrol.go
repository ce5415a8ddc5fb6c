// Package wscontrol encodes the ws-control packets that the proxy and the
// handler exchange about WebSocket sessions the proxy keeps (zhttp.md §11):
// one ZeroMQ frame, a plain tnetstring `{items: [...]}` with no 'T' prefix,
// byte-compatible with Pushpin 1.36 in both directions.
package wscontrol

import (
	"errors"
	"fmt"

	ts "github.com/pushpin-go/pushpin/proto/tnetstring"
)

// ErrBadPacket is returned for a packet that does not decode.
var ErrBadPacket = errors.New("wscontrol: invalid packet")

// Type is an item's `type`.
type Type string

// Item types (zhttp.md §11, "ws-control").
const (
	Here           Type = "here"             // P→H: the session exists
	KeepAlive      Type = "keep-alive"       // P→H: refresh, every 45 s
	Gone           Type = "gone"             // both: the session ended
	Cancel         Type = "cancel"           // both: kill it
	Grip           Type = "grip"             // P→H: a control message (JSON after "c:")
	Subscribe      Type = "subscribe"        // P→H: an implicit subscription (route target sub=)
	Ack            Type = "ack"              // both: answers an item that carried req-id
	Send           Type = "send"             // H→P: a message for the client
	Close          Type = "close"            // H→P: close the client with code/reason
	Detach         Type = "detach"           // H→P: drop the backend side, keep the client
	KeepAliveSetup Type = "keep-alive-setup" // H→P: the backend's keep-alive control message
	NeedKeepAlive  Type = "need-keep-alive"  // P→H: the keep-alive is due, send it
)

// SessionTTL is the `ttl` Pushpin's proxy puts on here/keep-alive items,
// seconds: the handler forgets a session not refreshed within it.
const SessionTTL = 60

// MaxItems is how many items Pushpin puts in one packet at most.
const MaxItems = 128

// Item is one ws-control item. Absent integer fields are -1 (Code, TTL,
// Timeout), as in Pushpin.
type Item struct {
	CID  string
	Type Type
	// CIDs (ours, on `send` only) lists further sessions that get the same
	// message: a publish crosses from our handler to our proxy once, not
	// once per subscriber. Sent only to a proxy whose `here` carried
	// MultiSend; Pushpin's proxy never sees it.
	CIDs          []string
	ReqID         string
	URI           string
	ContentType   string // send: text, binary, ping or pong
	Message       []byte // grip: the control message's JSON; send: the payload
	HasMessage    bool
	Queue         bool
	Code          int64
	Reason        string
	Route         string
	SeparateStats bool
	ChannelPrefix string
	Channel       string
	TTL           int64
	Timeout       int64
	KeepAliveMode string // keep-alive-setup: idle or interval
	// MultiSend (ours, on `here`) says the proxy accepts CIDs on send items.
	MultiSend bool
}

// NewItem returns an item of type t for cid with the absent markers set.
func NewItem(cid string, t Type) Item {
	return Item{CID: cid, Type: t, Code: -1, TTL: -1, Timeout: -1}
}

// Append appends the encoded packet holding items.
func Append(dst []byte, items []Item) []byte {
	dst, _ = ts.AppendContainer(dst, ts.TagDict, func(b []byte) ([]byte, error) {
		b = ts.AppendString(b, "items")
		return ts.AppendContainer(b, ts.TagList, func(b []byte) ([]byte, error) {
			for i := range items {
				b = appendItem(b, &items[i])
			}
			return b, nil
		})
	})
	return dst
}

func appendItem(b []byte, it *Item) []byte {
	b, _ = ts.AppendContainer(b, ts.TagDict, func(b []byte) ([]byte, error) {
		b = ts.AppendString(ts.AppendString(b, "cid"), it.CID)
		b = ts.AppendString(ts.AppendString(b, "type"), string(it.Type))
		if len(it.CIDs) > 0 {
			b = ts.AppendString(b, "cids")
			b, _ = ts.AppendContainer(b, ts.TagList, func(b []byte) ([]byte, error) {
				for _, c := range it.CIDs {
					b = ts.AppendString(b, c)
				}
				return b, nil
			})
		}
		if it.ReqID != "" {
			b = ts.AppendString(ts.AppendString(b, "req-id"), it.ReqID)
		}
		if it.URI != "" {
			b = ts.AppendString(ts.AppendString(b, "uri"), it.URI)
		}
		if it.ContentType != "" {
			b = ts.AppendString(ts.AppendString(b, "content-type"), it.ContentType)
		}
		if it.HasMessage || it.Message != nil {
			b = ts.AppendBytes(ts.AppendString(b, "message"), it.Message)
		}
		if it.Queue {
			b = ts.AppendBool(ts.AppendString(b, "queue"), true)
		}
		if it.Code >= 0 {
			b = ts.AppendInt(ts.AppendString(b, "code"), it.Code)
		}
		if it.Reason != "" {
			b = ts.AppendString(ts.AppendString(b, "reason"), it.Reason)
		}
		if it.Route != "" {
			b = ts.AppendString(ts.AppendString(b, "route"), it.Route)
		}
		if it.SeparateStats {
			b = ts.AppendBool(ts.AppendString(b, "separate-stats"), true)
		}
		if it.ChannelPrefix != "" {
			b = ts.AppendString(ts.AppendString(b, "channel-prefix"), it.ChannelPrefix)
		}
		if it.Channel != "" {
			b = ts.AppendString(ts.AppendString(b, "channel"), it.Channel)
		}
		if it.TTL >= 0 {
			b = ts.AppendInt(ts.AppendString(b, "ttl"), it.TTL)
		}
		if it.Timeout >= 0 {
			b = ts.AppendInt(ts.AppendString(b, "timeout"), it.Timeout)
		}
		if it.KeepAliveMode != "" {
			b = ts.AppendString(ts.AppendString(b, "keep-alive-mode"), it.KeepAliveMode)
		}
		if it.MultiSend {
			b = ts.AppendBool(ts.AppendString(b, "multi-send"), true)
		}
		return b, nil
	})
	return b
}

// Parse decodes a packet. An item of an unknown type is an error, as in
// Pushpin; the caller logs it and drops the packet.
func Parse(msg []byte) ([]Item, error) {
	e, rest, err := ts.Parse(msg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadPacket, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the packet", ErrBadPacket, len(rest))
	}
	var items []Item
	found := false
	err = e.Dict(func(k []byte, v ts.Elem) error {
		if string(k) != "items" {
			return nil
		}
		found = true
		return v.List(func(x ts.Elem) error {
			it, err := parseItem(x)
			if err != nil {
				return fmt.Errorf("item %d: %w", len(items), err)
			}
			items = append(items, it)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadPacket, err)
	}
	if !found {
		return nil, fmt.Errorf("%w: no items", ErrBadPacket)
	}
	return items, nil
}

func str(e ts.Elem) (string, error) {
	b, err := e.Bytes()
	return string(b), err
}

func parseItem(e ts.Elem) (Item, error) {
	it := NewItem("", "")
	hasCID := false
	err := e.Dict(func(k []byte, v ts.Elem) error {
		var err error
		switch string(k) {
		case "cid":
			it.CID, err = str(v)
			hasCID = true
		case "type":
			var t string
			t, err = str(v)
			it.Type = Type(t)
		case "cids":
			err = v.List(func(x ts.Elem) error {
				c, err := str(x)
				it.CIDs = append(it.CIDs, c)
				return err
			})
		case "req-id":
			it.ReqID, err = str(v)
		case "uri":
			it.URI, err = str(v)
		case "content-type":
			it.ContentType, err = str(v)
		case "message":
			var m []byte
			m, err = v.Bytes()
			it.Message = append([]byte(nil), m...)
			it.HasMessage = true
		case "queue":
			it.Queue, err = v.Bool()
		case "code":
			it.Code, err = v.Int()
		case "reason":
			it.Reason, err = str(v)
		case "route":
			it.Route, err = str(v)
		case "separate-stats":
			it.SeparateStats, err = v.Bool()
		case "channel-prefix":
			it.ChannelPrefix, err = str(v)
		case "channel":
			it.Channel, err = str(v)
		case "ttl":
			it.TTL, err = v.Int()
		case "timeout":
			it.Timeout, err = v.Int()
		case "keep-alive-mode":
			it.KeepAliveMode, err = str(v)
		case "multi-send":
			it.MultiSend, err = v.Bool()
		}
		if err != nil {
			return fmt.Errorf("field %q: %w", k, err)
		}
		return nil
	})
	if err != nil {
		return it, err
	}
	if !hasCID {
		return it, errors.New("no cid")
	}
	switch it.Type {
	case Here, KeepAlive, Gone, Cancel, Grip, Subscribe, Ack, Send, Close, Detach, KeepAliveSetup, NeedKeepAlive:
	case "":
		return it, errors.New("no type")
	default:
		return it, fmt.Errorf("unknown type %q", it.Type)
	}
	return it, nil
}
