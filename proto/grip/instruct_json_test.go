package grip

import (
	"reflect"
	"testing"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

var instructCT = zhttp.Header{Name: "Content-Type", Value: "application/grip-instruct"}

// specInstruct is grip.md §5's example (comments removed).
const specInstruct = `{
  "hold": {
    "mode": "response",
    "channels": [ {"name": "c1", "prev-id": "7", "filters": ["skip-self"]} ],
    "timeout": 30,
    "keep-alive": {"content": "\n", "timeout": 20},
    "meta": {"user": "alice"}
  },
  "response": {"code": 200, "reason": "OK", "headers": {"Content-Type": "text/plain"}, "body": "timeout text\n"}
}`

func TestJSONInstructSpecExample(t *testing.T) {
	t.Parallel()
	in := parse(t, 200, zhttp.Headers{instructCT, {Name: "X-Backend", Value: "dropped"}}, specInstruct, Options{ChannelPrefix: "p/"})
	if in.Hold != HoldResponse || in.Timeout != 30 {
		t.Fatalf("hold = %v timeout = %d", in.Hold, in.Timeout)
	}
	if want := []Channel{{Name: "p/c1", PrevID: "7", Filters: []string{"skip-self"}}}; !reflect.DeepEqual(in.Channels, want) {
		t.Fatalf("channels = %+v", in.Channels)
	}
	if ka := in.KeepAlive; ka == nil || string(ka.Data) != "\n" || ka.Timeout != 20 || ka.Mode != KeepAliveInterval {
		t.Fatalf("keep-alive = %+v", ka)
	}
	if in.Meta["user"] != "alice" {
		t.Fatalf("meta = %v", in.Meta)
	}
	r := in.Response
	if r.Code != 200 || r.Reason != "OK" || string(r.Body) != "timeout text\n" ||
		!reflect.DeepEqual(r.Headers, zhttp.Headers{{Name: "Content-Type", Value: "text/plain"}}) {
		t.Fatalf("response = %+v", r)
	}
}

func TestJSONInstructObserved(t *testing.T) {
	t.Parallel()
	// grip.md §5 [obs]: client got 201 Created, X-A: b after the 5 s minimum.
	body := `{"hold":{"mode":"response","channels":[{"name":"test"}],"timeout":3},"response":{"code":201,"headers":{"X-A":"b"},"body":"instruct timeout\n"}}`
	in := parse(t, 200, zhttp.Headers{instructCT}, body, Options{})
	if in.Timeout != MinTimeout || in.Response.Code != 201 || in.Response.Reason != "Created" ||
		!reflect.DeepEqual(in.Response.Headers, zhttp.Headers{{Name: "X-A", Value: "b"}}) || string(in.Response.Body) != "instruct timeout\n" {
		t.Fatalf("instruct = %+v", in)
	}
}

func TestJSONMergeWithHeaders(t *testing.T) {
	t.Parallel()
	h := zhttp.Headers{
		instructCT,
		{Name: "Grip-Hold", Value: "response"},
		{Name: "Grip-Channel", Value: "hdr"},
		{Name: "Grip-Timeout", Value: "40"},
		{Name: "Grip-Keep-Alive", Value: "x; mode=idle; timeout=9"},
		{Name: "Grip-Set-Meta", Value: "user=bob, other=1"},
		{Name: "Grip-Status", Value: "203 Mine"},
	}
	body := `{"hold":{"mode":"stream","channels":[{"name":"json"}],"timeout":10,"keep-alive":{"content-bin":"aGkK"},"meta":{"user":"carol"}}}`
	in := parse(t, 200, h, body, Options{})
	if in.Hold != HoldStream || in.Timeout != 10 {
		t.Fatalf("hold %v timeout %d", in.Hold, in.Timeout)
	}
	if len(in.Channels) != 2 || in.Channels[0].Name != "hdr" || in.Channels[1].Name != "json" {
		t.Fatalf("channels = %+v", in.Channels)
	}
	// JSON keep-alive replaces data and timeout; the header's mode stays.
	if ka := in.KeepAlive; ka == nil || string(ka.Data) != "hi\n" || ka.Timeout != DefaultKeepAliveTimeout || ka.Mode != KeepAliveIdle {
		t.Fatalf("keep-alive = %+v", ka)
	}
	if !reflect.DeepEqual(in.Meta, map[string]string{"user": "carol", "other": "1"}) {
		t.Fatalf("meta = %v", in.Meta)
	}
	// No "response": backend headers and body are dropped, Grip-Status kept.
	r := in.Response
	if r.Code != 203 || r.Reason != "Mine" || len(r.Headers) != 0 || len(r.Body) != 0 {
		t.Fatalf("response = %+v", r)
	}
}

func TestJSONResponseForms(t *testing.T) {
	t.Parallel()
	body := `{"response":{"headers":[["X-B","2"],["X-A","1"]],"body":"text","body-bin":"Ymlu","reason":"Fine"}}`
	r := parse(t, 200, zhttp.Headers{instructCT}, body, Options{}).Response
	if r.Code != 200 || r.Reason != "Fine" || string(r.Body) != "bin" ||
		!reflect.DeepEqual(r.Headers, zhttp.Headers{{Name: "X-B", Value: "2"}, {Name: "X-A", Value: "1"}}) {
		t.Fatalf("response = %+v", r)
	}
	in := parse(t, 200, zhttp.Headers{instructCT}, `{"hold":{"channels":[]}}`, Options{})
	if in.Hold != HoldResponse {
		t.Fatalf("default mode = %v", in.Hold)
	}
	// Object headers come out in key order, like Pushpin's QVariantMap.
	r = parse(t, 200, zhttp.Headers{instructCT}, `{"response":{"code":404,"headers":{"b":"2","a":"1"}}}`, Options{}).Response
	if r.Reason != "Not Found" || r.Headers[0].Name != "a" {
		t.Fatalf("response = %+v", r)
	}
}

func TestJSONErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		code int
		body string
		want string
	}{
		{201, `{}`, "response code for application/grip-instruct content must be 200"},
		{200, `{`, "failed to parse application/grip-instruct content as JSON"},
		{200, `[1]`, "instruct must be an object"},
		{200, `{"hold":1}`, "instruct contains 'hold' with wrong type"},
		{200, `{"hold":{"mode":1,"channels":[]}}`, "hold contains 'mode' with wrong type"},
		{200, `{"hold":{"mode":"poll","channels":[]}}`, "hold 'mode' must be set to either 'response' or 'stream'"},
		{200, `{"hold":{}}`, "hold does not contain 'channels'"},
		{200, `{"hold":{"channels":{}}}`, "hold contains 'channels' with wrong type"},
		{200, `{"hold":{"channels":["a"]}}`, "channel is not an object"},
		{200, `{"hold":{"channels":[{}]}}`, "channel does not contain 'name'"},
		{200, `{"hold":{"channels":[{"name":1}]}}`, "channel contains 'name' with wrong type"},
		{200, `{"hold":{"channels":[{"name":"a","prev-id":2}]}}`, "channel contains 'prev-id' with wrong type"},
		{200, `{"hold":{"channels":[{"name":"a","filters":"x"}]}}`, "channel contains 'filters' with wrong type"},
		{200, `{"hold":{"channels":[{"name":"a","filters":[1]}]}}`, "filters contains value with wrong type"},
		{200, `{"hold":{"channels":[],"timeout":[]}}`, "hold contains 'timeout' with wrong type"},
		{200, `{"hold":{"channels":[],"timeout":-1}}`, "hold contains 'timeout' with invalid value"},
		{200, `{"hold":{"channels":[],"keep-alive":1}}`, "hold contains 'keep-alive' with wrong type"},
		{200, `{"hold":{"channels":[],"keep-alive":{"content":1}}}`, "keep-alive contains 'content' with wrong type"},
		{200, `{"hold":{"channels":[],"keep-alive":{"content-bin":1}}}`, "keep-alive contains 'content-bin' with wrong type"},
		{200, `{"hold":{"channels":[],"keep-alive":{"content":"x","timeout":"soon"}}}`, "keep-alive contains 'timeout' with wrong type"},
		{200, `{"hold":{"channels":[],"keep-alive":{"content":"x","timeout":-5}}}`, "keep-alive contains 'timeout' with invalid value"},
		{200, `{"hold":{"channels":[],"meta":[]}}`, "hold contains 'meta' with wrong type"},
		{200, `{"hold":{"channels":[],"meta":{"user":1}}}`, "'meta' contains 'user' with wrong type"},
		{200, `{"response":{"code":"x"}}`, "response contains 'code' with wrong type"},
		{200, `{"response":{"code":1000}}`, "response contains 'code' with invalid value"},
		{200, `{"response":{"reason":5}}`, "response contains 'reason' with wrong type"},
		{200, `{"response":{"headers":5}}`, "response contains 'headers' with wrong type"},
		{200, `{"response":{"headers":[5]}}`, "headers contains element with wrong type"},
		{200, `{"response":{"headers":[["a"]]}}`, "headers contains list with wrong number of elements"},
		{200, `{"response":{"headers":[[1,"a"]]}}`, "header contains name element with wrong type"},
		{200, `{"response":{"headers":[["a",1]]}}`, "header contains value element with wrong type"},
		{200, `{"response":{"headers":{"a":1}}}`, "headers contains 'a' with wrong type"},
		{200, `{"response":{"body":1}}`, "response contains 'body' with wrong type"},
		{200, `{"response":{"body-bin":1}}`, "response contains 'body-bin' with wrong type"},
	}
	for _, c := range cases {
		if got := parseErr(t, c.code, zhttp.Headers{instructCT}, c.body); got != c.want {
			t.Errorf("%s: error %q, want %q", c.body, got, c.want)
		}
	}
}

func FuzzParseInstruct(f *testing.F) {
	f.Add(true, specInstruct, "", "")
	f.Add(true, `{"hold":{"mode":"response","channels":[{"name":"test"}],"timeout":3},"response":{"code":201,"headers":{"X-A":"b"},"body":"instruct timeout\n"}}`, "", "")
	f.Add(true, `{"hold":{"mode":"stream","channels":[{"name":"json"}],"keep-alive":{"content-bin":"aGkK"}}}`, "hdr", `x; mode=idle`)
	f.Add(false, "first\n", "c1; prev-id=7; filter=skip-self, c2", `:\n\n; format=cstring; timeout=20`)
	f.Add(false, "", `a; x="open`, `ka\n; format=cstring; timeout=2; mode=interval`)
	f.Fuzz(func(t *testing.T, asJSON bool, body, channel, keepAlive string) {
		h := zhttp.Headers{{Name: "Grip-Hold", Value: "stream"}, {Name: "Grip-Channel", Value: channel}, {Name: "Grip-Keep-Alive", Value: keepAlive}, {Name: "Grip-Link", Value: channel}}
		if asJSON {
			h = append(h, instructCT)
		}
		in, err := ParseResponse(200, "", h, []byte(body), Options{ChannelPrefix: "p", MaxChannels: 3})
		if err != nil {
			if in != nil {
				t.Fatal("instruct returned with error")
			}
			return
		}
		if in.Timeout < MinTimeout || len(in.Channels) > 3 || in.Response.Reason == "" {
			t.Fatalf("invariants broken: %+v", in)
		}
		if in.KeepAlive != nil && (in.KeepAlive.Timeout < MinKeepAliveTimeout || len(in.KeepAlive.Data) == 0) {
			t.Fatalf("keep-alive invariants broken: %+v", in.KeepAlive)
		}
		for _, x := range in.Response.Headers {
			if IsGripHeader(x.Name) {
				t.Fatalf("grip header leaked: %v", x)
			}
		}
	})
}
