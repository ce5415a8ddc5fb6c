package publish

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/pushpin-go/pushpin/proto/grip"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

func TestRenderMergesHeaders(t *testing.T) {
	t.Parallel()
	items, err := ParseJSONItems([]byte(`{"items":[{"channel":"c","formats":{"http-response":{
		"code":202,"body":"new\n",
		"headers":{"Content-Type":"text/html","X-New":"1","Grip-Expose-Headers":"X-Old","Grip-Hold":"x"}}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	orig := grip.Response{Code: 200, Reason: "OK", Body: []byte("old"), Headers: zhttp.Headers{
		{Name: "content-type", Value: "text/plain"}, {Name: "X-Old", Value: "o"}, {Name: "X-Keep", Value: "k"}, {Name: "Content-Length", Value: "3"},
	}}
	got, err := items[0].HTTPResponse.Render(orig)
	if err != nil {
		t.Fatal(err)
	}
	want := zhttp.Headers{{Name: "X-Keep", Value: "k"}, {Name: "Content-Type", Value: "text/html"}, {Name: "X-New", Value: "1"}}
	if got.Code != 202 || got.Reason != "Accepted" || string(got.Body) != "new\n" || !reflect.DeepEqual(got.Headers, want) {
		t.Fatalf("rendered = %+v", got)
	}
	if len(orig.Headers) != 4 {
		t.Fatal("Render modified the held response")
	}
}

func TestRenderBodyPatch(t *testing.T) {
	t.Parallel()
	items, err := ParseJSONItems([]byte(`{"items":[{"channel":"c","formats":{"http-response":{
		"body-patch":[{"op":"replace","path":"/count","value":2},{"op":"add","path":"/items/-","value":"b"}]}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	r := items[0].HTTPResponse
	got, err := r.Render(grip.Response{Body: []byte(`{"count":1,"items":["a"]}`)})
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(got.Body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["count"] != float64(2) || !reflect.DeepEqual(doc["items"], []any{"a", "b"}) {
		t.Fatalf("patched = %s", got.Body)
	}
	if _, err := r.Render(grip.Response{Body: []byte("not json")}); err == nil {
		t.Fatal("patching a non-JSON body succeeded")
	}
}

func TestBodyPatchFromTnetstring(t *testing.T) {
	t.Parallel()
	args := map[string]any{"items": []any{map[string]any{
		"channel": []byte("c"),
		"formats": map[string]any{"http-response": map[string]any{
			"body-patch": []any{map[string]any{"op": []byte("add"), "path": []byte("/a"), "value": []byte("x")}},
		}},
	}}}
	items, err := ParseItems(args)
	if err != nil {
		t.Fatal(err)
	}
	got, err := items[0].HTTPResponse.Render(grip.Response{Body: []byte(`{}`)})
	if err != nil || !bytes.Equal(got.Body, []byte(`{"a":"x"}`)) {
		t.Fatalf("patched = %s, %v", got.Body, err)
	}
}

func FuzzParseJSONItems(f *testing.F) {
	f.Add([]byte(`{"items":[` + specItem + `]}`))
	f.Add([]byte(`{"items":[{"channel":"test","formats":{"http-stream":{"content":"x"}}}]}`))
	f.Add([]byte(`{"items":[{"channel":"c","http-stream":{"content-bin":"aGk="},"ws-message":{"action":"close","code":4005}}]}`))
	f.Add([]byte(`{"items":[{"channel":"c","formats":{"http-response":{"body-patch":[{"op":"add","path":"/a","value":1}]}}}]}`))
	f.Add([]byte(`{"items":{}}`))
	f.Add([]byte(`nope`))
	f.Fuzz(func(t *testing.T, body []byte) {
		items, err := ParseJSONItems(body)
		if err != nil {
			if items != nil {
				t.Fatal("items returned with an error")
			}
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T is not *Error", err)
			}
			return
		}
		checkItems(t, items)
	})
}

func FuzzParseZMQMessage(f *testing.F) {
	f.Add([]byte(specFrame))
	f.Add([]byte(specFrame[1:]))
	f.Add([]byte(`J{"channel":"test","formats":{"http-stream":{"content":"x"}}}`))
	f.Add([]byte("46:7:channel,1:c,7:formats,18:11:http-stream,0:}}}"))
	f.Add([]byte(`J{"channel":"c","formats":{"ws-message":{"content-bin":"AP8="}},"meta":{"sender":"a"},"size":3,"no-seq":true}`))
	// The spec frame cut at every byte boundary.
	for i := 1; i < len(specFrame); i++ {
		f.Add([]byte(specFrame[:i]))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		it, err := ParseZMQMessage(frame)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T is not *Error", err)
			}
			return
		}
		checkItems(t, []Item{it})
	})
}

func checkItems(t *testing.T, items []Item) {
	t.Helper()
	for _, it := range items {
		if r := it.HTTPResponse; r != nil {
			if r.Action == ActionSend && (r.Code < 0 || r.Code > 999 || r.Reason == "") {
				t.Fatalf("bad http-response %+v", r)
			}
			for _, h := range r.Headers {
				if grip.IsGripHeader(h.Name) {
					t.Fatalf("grip header kept: %v", h)
				}
			}
		}
		if w := it.WSMessage; w != nil && w.Action == ActionSend && w.Type == "" {
			t.Fatalf("ws-message without type: %+v", w)
		}
		if it.Size < -1 {
			t.Fatalf("size %d", it.Size)
		}
	}
}
