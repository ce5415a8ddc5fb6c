package publish

import (
	"errors"
	"reflect"
	"testing"

	"github.com/pushpin-go/pushpin/proto/grip"
	"github.com/pushpin-go/pushpin/proto/tnetstring"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// specItem is publish.md §1's example.
const specItem = `{
  "channel": "mychannel",
  "id": "an-item-id",
  "prev-id": "the-previous-id",
  "formats": {
    "http-response": {"code": 200, "reason": "OK", "headers": {"Content-Type": "text/plain"}, "body": "hi\n"},
    "http-stream":   {"content": "a chunk\n"},
    "ws-message":    {"content": "a message"}
  },
  "meta": {"sender": "alice"}
}`

// specFrame is publish.md §3's tnetstring example, as sent to the PULL
// socket. The spec prints its size prefix as 68, but the payload is 64 bytes
// long: with 68 no tnetstring parser (Pushpin's included) can read it.
const specFrame = "T64:7:channel,4:test,7:formats,33:11:http-stream,14:7:content,1:x,}}}"

func TestParseJSONItemsSpecExample(t *testing.T) {
	t.Parallel()
	items, err := ParseJSONItems([]byte(`{"items":[` + specItem + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 {
		t.Fatalf("items = %d", len(items))
	}
	it := items[0]
	if it.Channel != "mychannel" || it.ID != "an-item-id" || it.PrevID != "the-previous-id" || it.Size != -1 || it.NoSeq {
		t.Fatalf("item = %+v", it)
	}
	if !reflect.DeepEqual(it.Meta, map[string]string{"sender": "alice"}) {
		t.Fatalf("meta = %v", it.Meta)
	}
	r := it.HTTPResponse
	if r == nil || r.Action != ActionSend || r.Code != 200 || r.Reason != "OK" || string(r.Body) != "hi\n" ||
		!reflect.DeepEqual(r.Headers, zhttp.Headers{{Name: "Content-Type", Value: "text/plain"}}) {
		t.Fatalf("http-response = %+v", r)
	}
	if s := it.HTTPStream; s == nil || string(s.Content) != "a chunk\n" {
		t.Fatalf("http-stream = %+v", s)
	}
	if w := it.WSMessage; w == nil || w.Type != grip.MessageText || string(w.Content) != "a message" {
		t.Fatalf("ws-message = %+v", w)
	}
}

func TestZMQFrames(t *testing.T) {
	t.Parallel()
	check := func(name string, it Item, err error, channel string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if it.Channel != channel || it.HTTPStream == nil || string(it.HTTPStream.Content) != "x" {
			t.Fatalf("%s: item = %+v", name, it)
		}
	}
	it, err := ParseZMQMessage([]byte(specFrame))
	check("T", it, err, "test")
	it, err = ParseZMQMessage([]byte(specFrame[1:]))
	check("bare", it, err, "test")
	it, err = ParseZMQMessage([]byte(`J{"channel":"test","formats":{"http-stream":{"content":"x"}}}`))
	check("J", it, err, "test")
	it, err = ParseSubMessage([]byte("sub"), []byte(specFrame))
	check("SUB overrides", it, err, "sub")
	it, err = ParseSubMessage([]byte("sub"), []byte(`J{"formats":{"http-stream":{"content":"x"}}}`))
	check("SUB without channel", it, err, "sub")

	for _, bad := range []string{"", "J{", "Tnope", "5:hello", "X"} {
		if _, err := ParseZMQMessage([]byte(bad)); !errors.Is(err, ErrInvalidFrame) && !errors.Is(err, ErrInvalidFormat) {
			t.Errorf("%q: error %v", bad, err)
		}
	}
	if _, err := ParseZMQMessage([]byte("Tnope")); !errors.Is(err, ErrInvalidFrame) {
		t.Errorf("bad tnetstring: %v", err)
	}
}

func TestTnetstringBinaryFields(t *testing.T) {
	t.Parallel()
	raw := []byte{0, 0xff, 'a'}
	frame, err := tnetstring.Encode(map[string]any{
		"channel": "c",
		"formats": map[string]any{
			"ws-message":    map[string]any{"content-bin": raw},
			"http-response": map[string]any{"body": raw, "headers": []any{[]any{"X-A", []byte("1")}}, "code": []byte("202")},
			"http-stream":   map[string]any{"content": raw},
		},
		"size": int64(12),
	})
	if err != nil {
		t.Fatal(err)
	}
	it, err := ParseZMQMessage(append([]byte("T"), frame...))
	if err != nil {
		t.Fatal(err)
	}
	if w := it.WSMessage; string(w.Content) != string(raw) || w.Type != grip.MessageBinary {
		t.Fatalf("ws = %+v", w)
	}
	if r := it.HTTPResponse; string(r.Body) != string(raw) || r.Code != 202 || r.Reason != "Accepted" || r.Headers.Get("X-A") != "1" {
		t.Fatalf("response = %+v", r)
	}
	if string(it.HTTPStream.Content) != string(raw) || it.Size != 12 {
		t.Fatalf("item = %+v", it)
	}
}

func TestJSONBinaryAndDefaults(t *testing.T) {
	t.Parallel()
	items, err := ParseJSONItems([]byte(`{"items":[{"channel":"c","formats":{
		"http-response":{"code":202,"body-bin":"aGkK","body":"ignored","headers":[["Grip-Foo","x"],["X-A","1"]]},
		"http-stream":{"content-bin":"aGk=","content":"ignored","content-filters":["var-subst"]},
		"ws-message":{"content-bin":"AP8="}},
		"size":5,"no-seq":true}]}`))
	if err != nil {
		t.Fatal(err)
	}
	it := items[0]
	r := it.HTTPResponse
	if r.Code != 202 || r.Reason != "Accepted" || string(r.Body) != "hi\n" || len(r.Headers) != 1 || r.Headers[0].Name != "X-A" {
		t.Fatalf("response = %+v", r)
	}
	if s := it.HTTPStream; string(s.Content) != "hi" || !s.HasFilters || !reflect.DeepEqual(s.Filters, []string{"var-subst"}) {
		t.Fatalf("stream = %+v", s)
	}
	if w := it.WSMessage; w.Type != grip.MessageBinary || string(w.Content) != "\x00\xff" {
		t.Fatalf("ws = %+v", w)
	}
	if it.Size != 5 || !it.NoSeq {
		t.Fatalf("item = %+v", it)
	}
}

func TestFormatsOnItem(t *testing.T) {
	t.Parallel()
	items, err := ParseJSONItems([]byte(`{"items":[{"channel":"c","http-stream":{"content":"x"},"ws-message":{"action":"close","code":4005,"reason":"bye"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if items[0].HTTPStream == nil || items[0].HTTPResponse != nil {
		t.Fatalf("formats = %+v", items[0])
	}
	if w := items[0].WSMessage; w.Action != ActionClose || w.Code != 4005 || w.Reason != "bye" {
		t.Fatalf("ws close = %+v", w)
	}
}

func TestActions(t *testing.T) {
	t.Parallel()
	items, err := ParseJSONItems([]byte(`{"items":[{"channel":"c","formats":{"http-response":{"action":"hint"},"http-stream":{"action":"close"},"ws-message":{"action":"hint"}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	it := items[0]
	if it.HTTPResponse.Action != ActionHint || it.HTTPStream.Action != ActionClose || it.WSMessage.Action != ActionHint {
		t.Fatalf("actions = %v %v %v", it.HTTPResponse.Action, it.HTTPStream.Action, it.WSMessage.Action)
	}
	items, err = ParseJSONItems([]byte(`{"items":[{"channel":"c","formats":{"ws-message":{"type":"ping"}}}]}`))
	if err != nil || items[0].WSMessage.Type != grip.MessagePing {
		t.Fatalf("ping without content: %+v %v", items, err)
	}
}

func TestHTTPAPIErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		body string
		text string
		kind error
	}{
		{`nope`, "Body is not valid JSON.", ErrNotJSON},
		{`[1]`, "Invalid format.", ErrInvalidFormat},
		{`"s"`, "Invalid format.", ErrInvalidFormat},
		{`{}`, "Invalid format: object does not contain 'items'", ErrInvalidFormat},
		{`{"items":{}}`, "Invalid format: object contains 'items' with wrong type", ErrInvalidFormat},
	}
	for _, c := range cases {
		_, err := ParseJSONItems([]byte(c.body))
		var pe *Error
		if !errors.As(err, &pe) || pe.Text != c.text || !errors.Is(err, c.kind) {
			t.Errorf("%s: error %v, want %q", c.body, err, c.text)
		}
	}
	items, err := ParseJSONItems([]byte(`{"items":[]}`))
	if err != nil || len(items) != 0 {
		t.Fatalf("empty items: %v %v", items, err)
	}
	// One bad item rejects the whole request.
	items, err = ParseJSONItems([]byte(`{"items":[{"channel":"a","formats":{"http-stream":{"content":"x"}}},{"formats":{}}]}`))
	if err == nil || items != nil {
		t.Fatalf("partial publish: %v %v", items, err)
	}
}

func TestItemValidationMessages(t *testing.T) {
	t.Parallel()
	cases := []struct{ item, msg string }{
		{`5`, "publish item object is not an object"},
		{`{"formats":{"http-stream":{"content":"x"}}}`, "publish item object does not contain 'channel'"},
		{`{"channel":1,"formats":{}}`, "publish item object contains 'channel' with wrong type"},
		{`{"channel":"c","id":1,"formats":{}}`, "publish item object contains 'id' with wrong type"},
		{`{"channel":"c","prev-id":[],"formats":{}}`, "publish item object contains 'prev-id' with wrong type"},
		{`{"channel":"c"}`, "no formats specified"},
		{`{"channel":"c","formats":{}}`, "no formats specified"},
		{`{"channel":"c","formats":[]}`, "publish item object contains 'formats' with wrong type"},
		{`{"channel":"c","formats":{"http-stream":"x"}}`, "'http-stream' is not an object"},
		{`{"channel":"c","formats":{"http-stream":{}}}`, "'http-stream' does not contain 'content' or 'content-bin'"},
		{`{"channel":"c","formats":{"http-stream":{"content":1}}}`, "'http-stream' contains 'content' with wrong type"},
		{`{"channel":"c","formats":{"http-stream":{"content-bin":1}}}`, "'http-stream' contains 'content-bin' with wrong type"},
		{`{"channel":"c","formats":{"http-stream":{"content":"x","content-filters":"y"}}}`, "'http-stream' contains 'content-filters' with wrong type"},
		{`{"channel":"c","formats":{"http-stream":{"content":"x","content-filters":[1]}}}`, "content-filters contains element with wrong type"},
		{`{"channel":"c","formats":{"http-response":{}}}`, "'http-response' does not contain 'body', 'body-bin', or 'body-patch'"},
		{`{"channel":"c","formats":{"http-response":{"body":"x","code":1000}}}`, "'http-response' contains 'code' with invalid value"},
		{`{"channel":"c","formats":{"http-response":{"body":"x","code":-1}}}`, "'http-response' contains 'code' with invalid value"},
		{`{"channel":"c","formats":{"http-response":{"body":"x","code":[]}}}`, "'http-response' contains 'code' with wrong type"},
		{`{"channel":"c","formats":{"http-response":{"body":"x","reason":1}}}`, "'http-response' contains 'reason' with wrong type"},
		{`{"channel":"c","formats":{"http-response":{"body":1}}}`, "'http-response' contains 'body' with wrong type"},
		{`{"channel":"c","formats":{"http-response":{"body-patch":{}}}}`, "'http-response' contains 'body-patch' with wrong type"},
		{`{"channel":"c","formats":{"http-response":{"body":"x","headers":1}}}`, "'http-response' contains 'headers' with wrong type"},
		{`{"channel":"c","formats":{"http-response":{"body":"x","headers":[1]}}}`, "headers contains element with wrong type"},
		{`{"channel":"c","formats":{"http-response":{"body":"x","headers":[["a"]]}}}`, "headers contains list with wrong number of elements"},
		{`{"channel":"c","formats":{"http-response":{"body":"x","headers":[[1,"a"]]}}}`, "header contains name element with wrong type"},
		{`{"channel":"c","formats":{"http-response":{"body":"x","headers":[["a",1]]}}}`, "header contains value element with wrong type"},
		{`{"channel":"c","formats":{"http-response":{"body":"x","headers":{"a":1}}}}`, "headers contains 'a' with wrong type"},
		{`{"channel":"c","formats":{"ws-message":{}}}`, "'ws-message' does not contain 'content' or 'content-bin'"},
		{`{"channel":"c","formats":{"ws-message":{"type":"binary"}}}`, "'ws-message' does not contain 'content' or 'content-bin'"},
		{`{"channel":"c","formats":{"ws-message":{"type":"frame","content":"x"}}}`, "'ws-message' contains 'type' with unknown value"},
		{`{"channel":"c","formats":{"ws-message":{"content-bin":1}}}`, "'ws-message' contains 'content-bin' with wrong type"},
		{`{"channel":"c","formats":{"ws-message":{"action":"close","code":-1}}}`, "'ws-message' contains 'code' with invalid value"},
		{`{"channel":"c","formats":{"ws-message":{"action":"close","code":"x"}}}`, "'ws-message' contains 'code' with wrong type"},
		{`{"channel":"c","formats":{"ws-message":{"action":1}}}`, "'ws-message' contains 'action' with wrong type"},
		{`{"channel":"c","formats":{"http-stream":{"action":"explode"}}}`, ""},
		{`{"channel":"c","formats":{"http-stream":{"content":"x"}},"meta":[]}`, "publish item object contains 'meta' with wrong type"},
		{`{"channel":"c","formats":{"http-stream":{"content":"x"}},"meta":{"sender":1}}`, "'meta' contains 'sender' with wrong type"},
		{`{"channel":"c","formats":{"http-stream":{"content":"x"}},"size":"big"}`, "publish item object contains 'size' with wrong type"},
		{`{"channel":"c","formats":{"http-stream":{"content":"x"}},"size":-1}`, "publish item object contains 'size' with invalid value"},
		{`{"channel":"c","formats":{"http-stream":{"content":"x"}},"no-seq":1}`, "publish item object contains 'no-seq' with wrong type"},
	}
	for _, c := range cases {
		_, err := ParseJSONItems([]byte(`{"items":[` + c.item + `]}`))
		var pe *Error
		if !errors.As(err, &pe) || pe.Message != c.msg || pe.Text != "Invalid format: "+c.msg || !errors.Is(err, ErrInvalidFormat) {
			t.Errorf("%s: error %v, want message %q", c.item, err, c.msg)
		}
	}
}

func TestTnetstringValidationMessages(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"46:7:channel,1:c,7:formats,18:11:http-stream,0:}}}":   "'http-stream' does not contain 'content'",
		"48:7:channel,1:c,7:formats,20:13:http-response,0:}}}": "'http-response' does not contain 'body' or 'body-patch'",
		"32:7:formats,18:11:http-stream,0:}}}":                 "publish item object does not contain 'channel'",
	}
	for frame, msg := range cases {
		if _, _, err := tnetstring.Parse([]byte(frame)); err != nil {
			t.Fatalf("test frame %q: %v", frame, err)
		}
		_, err := ParseZMQMessage([]byte(frame))
		var pe *Error
		if !errors.As(err, &pe) || pe.Message != msg {
			t.Errorf("%s: error %v, want %q", frame, err, msg)
		}
	}
	// The command socket's publish args.
	args, err := tnetstring.Decode([]byte("0:}"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseItems(args); err == nil || err.Error() != "Invalid format: object does not contain 'items'" {
		t.Fatalf("command args error = %v", err)
	}
	args, _ = tnetstring.Decode([]byte("80:5:items,68:64:7:channel,4:test,7:formats,33:11:http-stream,14:7:content,1:x,}}}]}"))
	items, err := ParseItems(args)
	if err != nil || len(items) != 1 || items[0].Channel != "test" {
		t.Fatalf("command items = %+v, %v", items, err)
	}
}
