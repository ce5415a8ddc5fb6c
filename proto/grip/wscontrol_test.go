package grip

import (
	"errors"
	"reflect"
	"testing"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

func TestParseControlMessage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want ControlMessage
	}{
		{`c:{"type":"subscribe","channel":"test","filters":["skip-self"]}`, ControlMessage{Type: ControlSubscribe, Channel: "test", Filters: []string{"skip-self"}}},
		{`c:{"type":"unsubscribe","channel":"test"}`, ControlMessage{Type: ControlUnsubscribe, Channel: "test"}},
		{`c:{"type":"detach"}`, ControlMessage{Type: ControlDetach}},
		{`{"type":"session","id":"s1"}`, ControlMessage{Type: ControlSession, SessionID: "s1"}},
		{`c:{"type":"set-meta","name":"user","value":"alice"}`, ControlMessage{Type: ControlSetMeta, Name: "user", Value: "alice", HasValue: true}},
		{`c:{"type":"set-meta","name":"user"}`, ControlMessage{Type: ControlSetMeta, Name: "user"}},
		{`c:{"type":"keep-alive","content":"ka","timeout":2,"mode":"interval"}`,
			ControlMessage{Type: ControlKeepAlive, Content: []byte("ka"), HasContent: true, MessageType: MessageText, Timeout: 2, Mode: KeepAliveInterval}},
		{`c:{"type":"keep-alive","content-bin":"aGk="}`,
			ControlMessage{Type: ControlKeepAlive, Content: []byte("hi"), HasContent: true, MessageType: MessageText, Timeout: DefaultWSKeepAliveTimeout}},
		{`c:{"type":"keep-alive","message-type":"ping","content":""}`,
			ControlMessage{Type: ControlKeepAlive, Content: []byte{}, HasContent: true, MessageType: MessagePing, Timeout: DefaultWSKeepAliveTimeout}},
		{`c:{"type":"keep-alive"}`, ControlMessage{Type: ControlKeepAlive, MessageType: MessageText, Timeout: DefaultWSKeepAliveTimeout}},
		{`c:{"type":"send-delayed","content":"later","message-type":"binary"}`,
			ControlMessage{Type: ControlSendDelayed, Content: []byte("later"), HasContent: true, MessageType: MessageBinary, Timeout: DefaultSendDelayedTimeout}},
		{`c:{"type":"flush-delayed"}`, ControlMessage{Type: ControlFlushDelayed}},
	}
	for _, c := range cases {
		got, err := ParseControlMessage([]byte(c.in))
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(*got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.in, *got, c.want)
		}
	}
}

func TestParseControlMessageErrors(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		`c:nope`:                              "failed to parse grip control message as JSON",
		`c:[1]`:                               "grip control packet is not an object",
		`c:{}`:                                "grip control object does not contain 'type'",
		`c:{"type":"close"}`:                  "'type' contains unknown value: close",
		`c:{"type":"subscribe"}`:              "grip control object does not contain 'channel'",
		`c:{"type":"subscribe","channel":""}`: "grip control object contains 'channel' with invalid value",
		`c:{"type":"subscribe","channel":1}`:  "grip control object contains 'channel' with wrong type",
		`c:{"type":"subscribe","channel":"a","filters":[1]}`: "filters contains value with wrong type",
		`c:{"type":"set-meta","name":""}`:                    "grip control object contains 'name' with invalid value",
		`c:{"type":"keep-alive","message-type":"x"}`:         "grip control object contains 'message-type' with unknown value",
		`c:{"type":"keep-alive","content":"a","timeout":-1}`: "grip control object contains 'timeout' with invalid value",
	}
	for in, want := range cases {
		_, err := ParseControlMessage([]byte(in))
		if err == nil || err.Error() != want || !errors.Is(err, ErrInvalidControl) {
			t.Errorf("%s: error %v, want %q", in, err, want)
		}
	}
}

func TestParseWSExtension(t *testing.T) {
	t.Parallel()
	cases := []struct {
		h    zhttp.Headers
		want WSExtension
	}{
		{zhttp.Headers{{Name: "Sec-WebSocket-Extensions", Value: "grip"}}, WSExtension{true, "m:"}},
		{zhttp.Headers{{Name: "Sec-WebSocket-Extensions", Value: `grip; message-prefix=""`}}, WSExtension{true, ""}},
		{zhttp.Headers{{Name: "sec-websocket-extensions", Value: "permessage-deflate, grip; message-prefix=\"d:\""}}, WSExtension{true, "d:"}},
		{zhttp.Headers{{Name: "Sec-WebSocket-Extensions", Value: "permessage-deflate"}}, WSExtension{}},
		{nil, WSExtension{}},
	}
	for _, c := range cases {
		if got := ParseWSExtension(c.h); got != c.want {
			t.Errorf("%v => %+v, want %+v", c.h, got, c.want)
		}
	}
}
