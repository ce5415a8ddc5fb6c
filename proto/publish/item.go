// Package publish parses Pushpin publish items (publish.md §1) from every
// input Pushpin accepts: the HTTP control API's JSON, the command socket's
// tnetstring, and the ZeroMQ PULL/SUB frames (`J`+JSON, `T`+tnetstring, bare
// tnetstring). Rejections carry Pushpin's exact message text.
//
// Parsing happens once per publish: every format's payload ends up as
// ready-to-send []byte, so fan-out to N subscribers does no per-subscriber
// decoding (only HTTPResponse.Render, when a body-patch or header merge
// needs the held request's own response).
package publish

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/pushpin-go/pushpin/proto/tnetstring"
)

// Item is one publish item.
type Item struct {
	Channel string
	ID      string // "" when none
	PrevID  string // "" when none

	// Formats; nil when the item does not carry that format.
	HTTPResponse *HTTPResponse
	HTTPStream   *HTTPStream
	WSMessage    *WSMessage

	Meta  map[string]string // publish meta for filters (sender, skip_users, require_sub)
	Size  int               // logical size for stats; -1 when not given
	NoSeq bool              // bypass prev-id sequencing
}

// Format keys (publish.md §1).
const (
	FormatHTTPResponse = "http-response"
	FormatHTTPStream   = "http-stream"
	FormatWSMessage    = "ws-message"
)

// ParseJSONItems parses an HTTP API `POST /publish/` body
// (`{"items":[...]}`). Any error is an *Error whose Text is the 400 body
// Pushpin sends; on error no item is returned, so nothing is published.
func ParseJSONItems(body []byte) ([]Item, error) {
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, errNotJSON
	}
	return src{json: true}.items(doc)
}

// ParseItems parses the command socket's `publish` args (a tnetstring dict
// `{items: [...]}` decoded by tnetstring.Decode).
func ParseItems(args any) ([]Item, error) {
	return src{}.items(args)
}

func (s src) items(doc any) ([]Item, error) {
	m, ok := asMap(doc)
	if !ok {
		return nil, errNotObject
	}
	v, ok := m["items"]
	if !ok {
		return nil, formatErr("object does not contain 'items'")
	}
	l, ok := v.([]any)
	if !ok {
		return nil, formatErr("object contains 'items' with wrong type")
	}
	items := make([]Item, 0, len(l))
	for _, x := range l {
		it, err := s.item(x, "")
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	return items, nil
}

// ParseJSONItem parses one JSON item object.
func ParseJSONItem(b []byte) (Item, error) {
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		return Item{}, &Error{Text: "Invalid format: item is not valid JSON", Message: "item is not valid JSON", kind: ErrInvalidFrame}
	}
	return src{json: true}.item(doc, "")
}

// ParseItem parses one item from generic tnetstring values.
func ParseItem(v any) (Item, error) { return src{}.item(v, "") }

// ParseZMQMessage parses one PULL-socket frame: `J` + JSON object, `T` +
// tnetstring dict, or a bare tnetstring dict (publish.md §3). Byte fields of
// tnetstring input alias frame, which must not be reused afterwards.
func ParseZMQMessage(frame []byte) (Item, error) {
	return parseFrame(frame, "")
}

// ParseSubMessage parses a SUB-socket message `[channel, item]`
// (publish.md §4): the item is framed as for ParseZMQMessage and the
// channel frame overrides (and replaces the need for) the item's own
// `channel`.
func ParseSubMessage(channel, frame []byte) (Item, error) {
	return parseFrame(frame, string(channel))
}

func parseFrame(frame []byte, channel string) (Item, error) {
	if len(frame) == 0 {
		return Item{}, frameErr("empty frame")
	}
	if frame[0] == 'J' {
		var doc any
		d := json.NewDecoder(bytes.NewReader(frame[1:]))
		if err := d.Decode(&doc); err != nil {
			return Item{}, frameErr(fmt.Sprintf("bad JSON: %v", err))
		}
		return src{json: true}.item(doc, channel)
	}
	if frame[0] == 'T' {
		frame = frame[1:]
	}
	doc, err := tnetstring.Decode(frame)
	if err != nil {
		return Item{}, frameErr(fmt.Sprintf("bad tnetstring: %v", err))
	}
	return src{}.item(doc, channel)
}

func frameErr(msg string) *Error {
	return &Error{Text: "received message with invalid format: " + msg, Message: msg, kind: ErrInvalidFrame}
}

func (s src) item(v any, channel string) (Item, error) {
	const pn = "publish item object"
	m, ok := asMap(v)
	if !ok {
		return Item{}, formatErr(pn + " is not an object")
	}
	it := Item{Size: -1}
	var err error
	if channel != "" {
		it.Channel = channel
	} else if it.Channel, _, err = getString(m, pn, "channel", true); err != nil {
		return Item{}, err
	}
	if it.ID, _, err = getString(m, pn, "id", false); err != nil {
		return Item{}, err
	}
	if it.PrevID, _, err = getString(m, pn, "prev-id", false); err != nil {
		return Item{}, err
	}

	formats := m
	if v, ok := m["formats"]; ok {
		if formats, ok = asMap(v); !ok {
			return Item{}, wrongType(pn, "formats")
		}
		if len(formats) == 0 {
			return Item{}, formatErr("no formats specified")
		}
	} else if m[FormatHTTPResponse] == nil && m[FormatHTTPStream] == nil && m[FormatWSMessage] == nil {
		// Without `formats`, format keys on the item itself count [obs].
		return Item{}, formatErr("no formats specified")
	}
	// A `formats` object holding only unknown keys is accepted with no
	// formats, as Pushpin does; such an item reaches no subscriber.
	if v, ok := formats[FormatHTTPResponse]; ok {
		if it.HTTPResponse, err = s.parseHTTPResponse(v); err != nil {
			return Item{}, err
		}
	}
	if v, ok := formats[FormatHTTPStream]; ok {
		if it.HTTPStream, err = s.parseHTTPStream(v); err != nil {
			return Item{}, err
		}
	}
	if v, ok := formats[FormatWSMessage]; ok {
		if it.WSMessage, err = s.parseWSMessage(v); err != nil {
			return Item{}, err
		}
	}

	if v, ok := m["meta"]; ok {
		mm, ok := asMap(v)
		if !ok {
			return Item{}, wrongType(pn, "meta")
		}
		it.Meta = make(map[string]string, len(mm))
		for _, k := range sortedKeys(mm) {
			sv, ok := asString(mm[k])
			if !ok {
				return Item{}, formatErr(fmt.Sprintf("'meta' contains '%s' with wrong type", k))
			}
			it.Meta[k] = sv
		}
	}
	if v, ok := m["size"]; ok {
		n, ok := asInt(v)
		if !ok {
			return Item{}, wrongType(pn, "size")
		}
		if n < 0 {
			return Item{}, formatErr(pn + " contains 'size' with invalid value")
		}
		it.Size = n
	}
	if v, ok := m["no-seq"]; ok {
		b, ok := v.(bool)
		if !ok {
			return Item{}, wrongType(pn, "no-seq")
		}
		it.NoSeq = b
	}
	return it, nil
}
