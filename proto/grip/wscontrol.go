package grip

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// ControlPrefix starts a backend→client text message that is a GRIP
// control message rather than data (grip.md §10.1).
const ControlPrefix = "c:"

// DefaultMessagePrefix is the data-message prefix when the backend's grip
// extension does not set message-prefix.
const DefaultMessagePrefix = "m:"

// Control-message timeouts' defaults, seconds (grip.md §10.2).
const (
	DefaultWSKeepAliveTimeout = 55
	DefaultSendDelayedTimeout = 1
)

// ControlType is a control message's `type`.
type ControlType string

// Control message types.
const (
	ControlSubscribe    ControlType = "subscribe"
	ControlUnsubscribe  ControlType = "unsubscribe"
	ControlDetach       ControlType = "detach"
	ControlSession      ControlType = "session"
	ControlSetMeta      ControlType = "set-meta"
	ControlKeepAlive    ControlType = "keep-alive"
	ControlSendDelayed  ControlType = "send-delayed"
	ControlFlushDelayed ControlType = "flush-delayed"
)

// MessageType is a WebSocket message kind named in control messages and
// ws-message publishes.
type MessageType string

// WebSocket message types.
const (
	MessageText   MessageType = "text"
	MessageBinary MessageType = "binary"
	MessagePing   MessageType = "ping"
	MessagePong   MessageType = "pong"
)

// ParseMessageType maps a `type`/`message-type` value; ok is false for
// anything else.
func ParseMessageType(s string) (MessageType, bool) {
	switch t := MessageType(s); t {
	case MessageText, MessageBinary, MessagePing, MessagePong:
		return t, true
	}
	return "", false
}

// ControlMessage is one parsed WebSocket GRIP control message. Only the
// fields of its Type are set.
type ControlMessage struct {
	Type ControlType

	// subscribe / unsubscribe (route prefix not applied: the proxy knows it)
	Channel string
	Filters []string

	// session
	SessionID string

	// set-meta: HasValue false means delete Name.
	Name     string
	Value    string
	HasValue bool

	// keep-alive / send-delayed. HasContent false on keep-alive disables it.
	Content     []byte
	HasContent  bool
	MessageType MessageType
	Timeout     int           // seconds, default applied
	Mode        KeepAliveMode // keep-alive only
}

// ParseControlMessage parses a control message: msg is the whole text
// message including the "c:" prefix (or just the JSON after it). Errors
// wrap ErrInvalidControl and carry Pushpin's text.
func ParseControlMessage(msg []byte) (*ControlMessage, error) {
	msg = bytes.TrimPrefix(msg, []byte(ControlPrefix))
	var doc any
	if err := json.Unmarshal(msg, &doc); err != nil {
		return nil, controlErr("failed to parse grip control message as JSON")
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, controlErr("grip control packet is not an object")
	}
	const pn = "grip control object"
	typ, has, err := controlString(m, "type")
	if err != nil {
		return nil, err
	}
	if !has {
		return nil, controlErr(pn + " does not contain 'type'")
	}
	out := &ControlMessage{Type: ControlType(typ)}
	switch out.Type {
	case ControlSubscribe, ControlUnsubscribe:
		ch, has, err := controlString(m, "channel")
		if err != nil {
			return nil, err
		}
		if !has {
			return nil, controlErr(pn + " does not contain 'channel'")
		}
		if ch == "" {
			return nil, controlErr(pn + " contains 'channel' with invalid value")
		}
		out.Channel = ch
		if out.Type == ControlSubscribe {
			if v, ok := m["filters"]; ok {
				l, ok := v.([]any)
				if !ok {
					return nil, controlErr(pn + " contains 'filters' with wrong type")
				}
				for _, f := range l {
					s, ok := f.(string)
					if !ok {
						return nil, controlErr("filters contains value with wrong type")
					}
					out.Filters = append(out.Filters, s)
				}
			}
		}
	case ControlSession:
		if out.SessionID, _, err = controlString(m, "id"); err != nil {
			return nil, err
		}
	case ControlSetMeta:
		name, has, err := controlString(m, "name")
		if err != nil {
			return nil, err
		}
		if !has {
			return nil, controlErr(pn + " does not contain 'name'")
		}
		if name == "" {
			return nil, controlErr(pn + " contains 'name' with invalid value")
		}
		out.Name = name
		if out.Value, out.HasValue, err = controlString(m, "value"); err != nil {
			return nil, err
		}
	case ControlKeepAlive, ControlSendDelayed:
		if err := out.parseDelivery(m); err != nil {
			return nil, err
		}
	case ControlDetach, ControlFlushDelayed:
	default:
		return nil, controlErr("'type' contains unknown value: " + typ)
	}
	return out, nil
}

func (out *ControlMessage) parseDelivery(m map[string]any) error {
	const pn = "grip control object"
	mt, has, err := controlString(m, "message-type")
	if err != nil {
		return err
	}
	// Text is the default even with content-bin (grip.md §10.2 [obs]).
	out.MessageType = MessageText
	if has {
		t, ok := ParseMessageType(mt)
		if !ok {
			return controlErr(pn + " contains 'message-type' with unknown value")
		}
		out.MessageType = t
	}
	if v, ok := m["content-bin"]; ok {
		s, ok := v.(string)
		if !ok {
			return controlErr(pn + " contains 'content-bin' with wrong type")
		}
		out.Content, out.HasContent = DecodeBase64(s), true
	} else if v, ok := m["content"]; ok {
		s, ok := v.(string)
		if !ok {
			return controlErr(pn + " contains 'content' with wrong type")
		}
		out.Content, out.HasContent = []byte(s), true
	}
	out.Timeout = DefaultWSKeepAliveTimeout
	if out.Type == ControlSendDelayed {
		out.Timeout = DefaultSendDelayedTimeout
	}
	if v, ok := m["timeout"]; ok && out.HasContent {
		t, ok := jsonInt(v)
		if !ok {
			return controlErr(pn + " contains 'timeout' with wrong type")
		}
		if t < 0 {
			return controlErr(pn + " contains 'timeout' with invalid value")
		}
		out.Timeout = t
	}
	if out.Type == ControlKeepAlive {
		mode, _, err := controlString(m, "mode")
		if err != nil {
			return err
		}
		if mode == "interval" {
			out.Mode = KeepAliveInterval
		}
	}
	return nil
}

func controlString(m map[string]any, key string) (string, bool, error) {
	v, ok := m[key]
	if !ok {
		return "", false, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", true, controlErr(fmt.Sprintf("grip control object contains '%s' with wrong type", key))
	}
	return s, true, nil
}

type controlError struct{ msg string }

func (e *controlError) Error() string        { return e.msg }
func (e *controlError) Is(target error) bool { return target == ErrInvalidControl }

func controlErr(msg string) error { return &controlError{msg: msg} }

// WSExtension is the result of the backend's grip extension negotiation.
type WSExtension struct {
	Enabled       bool
	MessagePrefix string // DefaultMessagePrefix unless message-prefix was given ("" allowed)
}

// ParseWSExtension looks for the `grip` extension in the backend's
// Sec-WebSocket-Extensions headers (handshake response, or WebSocket-over-
// HTTP OPEN response): `grip[; message-prefix="<p>"]`.
func ParseWSExtension(h zhttp.Headers) WSExtension {
	for _, p := range ListParams(h, "Sec-WebSocket-Extensions", false) {
		if p.First() != "grip" {
			continue
		}
		ext := WSExtension{Enabled: true, MessagePrefix: DefaultMessagePrefix}
		if v, ok := p.Get("message-prefix"); ok {
			ext.MessagePrefix = v
		}
		return ext
	}
	return WSExtension{}
}
