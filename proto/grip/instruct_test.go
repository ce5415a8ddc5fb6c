package grip

import (
	"errors"
	"reflect"
	"testing"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

func parse(t *testing.T, code int, h zhttp.Headers, body string, opts Options) *Instruct {
	t.Helper()
	in, err := ParseResponse(code, "", h, []byte(body), opts)
	if err != nil {
		t.Fatalf("ParseResponse: %v", err)
	}
	return in
}

func parseErr(t *testing.T, code int, h zhttp.Headers, body string) string {
	t.Helper()
	_, err := ParseResponse(code, "", h, []byte(body), Options{})
	if err == nil {
		t.Fatalf("ParseResponse(%v, %q) succeeded", h, body)
	}
	if !errors.Is(err, ErrInvalidInstruct) {
		t.Fatalf("error %v does not match ErrInvalidInstruct", err)
	}
	return err.Error()
}

func TestHeaderFormStream(t *testing.T) {
	t.Parallel()
	h := zhttp.Headers{
		{Name: "Content-Type", Value: "text/event-stream"},
		{Name: "Grip-Hold", Value: "stream"},
		{Name: "Grip-Channel", Value: "c1; prev-id=7; filter=skip-self; filter=build-id, c2"},
		{Name: "grip-channel", Value: "c3"},
		{Name: "Grip-Keep-Alive", Value: `:\n\n; format=cstring; timeout=20`},
		{Name: "Grip-Set-Meta", Value: `user=alice, id_format="%(c1)s"`},
		{Name: "Grip-Link", Value: "</next?n=1>; rel=next; timeout=3"},
		{Name: "Content-Length", Value: "6"},
	}
	in := parse(t, 200, h, "first\n", Options{ChannelPrefix: "p_"})
	if in.Hold != HoldStream {
		t.Fatalf("hold = %v", in.Hold)
	}
	want := []Channel{
		{Name: "p_c1", PrevID: "7", Filters: []string{"skip-self", "build-id"}},
		{Name: "p_c2"}, {Name: "p_c3"},
	}
	if !reflect.DeepEqual(in.Channels, want) {
		t.Fatalf("channels = %+v", in.Channels)
	}
	if ka := in.KeepAlive; ka == nil || string(ka.Data) != ":\n\n" || ka.Timeout != 20 || ka.Mode != KeepAliveIdle {
		t.Fatalf("keep-alive = %+v", in.KeepAlive)
	}
	if !reflect.DeepEqual(in.Meta, map[string]string{"user": "alice", "id_format": "%(c1)s"}) {
		t.Fatalf("meta = %v", in.Meta)
	}
	if in.NextLink != "/next?n=1" || in.NextLinkTimeout != 3 {
		t.Fatalf("link = %q %d", in.NextLink, in.NextLinkTimeout)
	}
	r := in.Response
	if r.Code != 200 || r.Reason != "OK" || string(r.Body) != "first\n" {
		t.Fatalf("response = %+v", r)
	}
	if want := (zhttp.Headers{{Name: "Content-Type", Value: "text/event-stream"}, {Name: "Content-Length", Value: "6"}}); !reflect.DeepEqual(r.Headers, want) {
		t.Fatalf("client headers = %v", r.Headers)
	}
}

func TestTimeoutDefaultsAndMinimum(t *testing.T) {
	t.Parallel()
	cases := []struct {
		v    string
		want int
	}{{"", DefaultTimeout}, {"3", MinTimeout}, {"0", MinTimeout}, {"30", 30}, {" 7 ", 7}}
	for _, c := range cases {
		h := zhttp.Headers{{Name: "Grip-Hold", Value: "response"}, {Name: "Grip-Channel", Value: "c"}}
		if c.v != "" {
			h = append(h, zhttp.Header{Name: "Grip-Timeout", Value: c.v})
		}
		if got := parse(t, 200, h, "", Options{}).Timeout; got != c.want {
			t.Errorf("Grip-Timeout %q => %d, want %d", c.v, got, c.want)
		}
	}
}

func TestKeepAliveForms(t *testing.T) {
	t.Parallel()
	cases := []struct {
		v       string
		data    string
		timeout int
		mode    KeepAliveMode
	}{
		{"ka", "ka", DefaultKeepAliveTimeout, KeepAliveIdle},
		{`ka\n; format=cstring; timeout=2; mode=interval`, "ka\n", 2, KeepAliveInterval},
		{`a\\b\r\x41\q; format=cstring`, "a\\b\rA", DefaultKeepAliveTimeout, KeepAliveIdle},
		{"aGkK; format=base64; timeout=0", "hi\n", MinKeepAliveTimeout, KeepAliveIdle},
		{"raw; format=raw; mode=idle", "raw", DefaultKeepAliveTimeout, KeepAliveIdle},
	}
	for _, c := range cases {
		h := zhttp.Headers{{Name: "Grip-Hold", Value: "stream"}, {Name: "Grip-Keep-Alive", Value: c.v}}
		ka := parse(t, 200, h, "", Options{}).KeepAlive
		if ka == nil || string(ka.Data) != c.data || ka.Timeout != c.timeout || ka.Mode != c.mode {
			t.Errorf("Grip-Keep-Alive %q => %+v", c.v, ka)
		}
	}
}

func TestHeaderFormErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		h    zhttp.Headers
		want string
	}{
		{zhttp.Headers{{Name: "Grip-Hold", Value: "poll"}}, "Grip-Hold must be set to either 'response' or 'stream'"},
		{zhttp.Headers{{Name: "Grip-Channel", Value: "a,,b"}}, "failed to parse Grip-Channel"},
		{zhttp.Headers{{Name: "Grip-Channel", Value: "a; filter=1; filter=2; filter=3; filter=4; filter=5; filter=6"}}, "too many filters for channel 'a'"},
		{zhttp.Headers{{Name: "Grip-Timeout", Value: "x"}}, "failed to parse Grip-Timeout"},
		{zhttp.Headers{{Name: "Grip-Timeout", Value: "-1"}}, "Grip-Timeout has invalid value"},
		{zhttp.Headers{{Name: "Grip-Keep-Alive", Value: "; timeout=3"}}, "Grip-Keep-Alive cannot be empty"},
		{zhttp.Headers{{Name: "Grip-Keep-Alive", Value: "x; mode=sometimes"}}, "no such Grip-Keep-Alive mode 'sometimes'"},
		{zhttp.Headers{{Name: "Grip-Keep-Alive", Value: "x; timeout=soon"}}, "failed to parse Grip-Keep-Alive timeout value"},
		{zhttp.Headers{{Name: "Grip-Keep-Alive", Value: "x; timeout=-2"}}, "Grip-Keep-Alive timeout has invalid value"},
		{zhttp.Headers{{Name: "Grip-Keep-Alive", Value: `x\x4; format=cstring`}}, "failed to parse Grip-Keep-Alive cstring format"},
		{zhttp.Headers{{Name: "Grip-Keep-Alive", Value: `x\; format=cstring`}}, "failed to parse Grip-Keep-Alive cstring format"},
		{zhttp.Headers{{Name: "Grip-Keep-Alive", Value: "x; format=hex"}}, "no such Grip-Keep-Alive format 'hex'"},
		{zhttp.Headers{{Name: "Grip-Set-Meta", Value: "a=1,,b=2"}}, "Grip-Set-Meta cannot be empty"},
		{zhttp.Headers{{Name: "Grip-Status", Value: "abc"}}, "Grip-Status contains invalid status code"},
		{zhttp.Headers{{Name: "Grip-Status", Value: "1000 Big"}}, "Grip-Status contains invalid status code"},
		{zhttp.Headers{{Name: "Grip-Link", Value: "/next; rel=next"}}, "failed to parse Grip-Link value"},
		{zhttp.Headers{{Name: "Grip-Link", Value: "<%zz>; rel=next"}}, "Grip-Link contains invalid link"},
		{zhttp.Headers{{Name: "Grip-Link", Value: "</n>; rel=next; timeout=x"}}, "failed to parse Grip-Link timeout value"},
		{zhttp.Headers{{Name: "Grip-Link", Value: "</n>; rel=next; timeout=-1"}}, "Grip-Link timeout has invalid value"},
	}
	for _, c := range cases {
		if got := parseErr(t, 200, c.h, ""); got != c.want {
			t.Errorf("%v: error %q, want %q", c.h, got, c.want)
		}
	}
}

func TestStatusAndExpose(t *testing.T) {
	t.Parallel()
	h := zhttp.Headers{
		{Name: "Grip-Status", Value: "304 Not Modified Custom"},
		{Name: "Content-Type", Value: "text/plain"},
		{Name: "Date", Value: "x"},
		{Name: "X-A", Value: "1"},
		{Name: "Grip-Expose-Headers", Value: "x-a"},
		{Name: "Grip-Channel", Value: "c"},
	}
	r := parse(t, 200, h, "b", Options{}).Response
	if r.Code != 304 || r.Reason != "Not Modified Custom" {
		t.Fatalf("status = %d %q", r.Code, r.Reason)
	}
	if want := (zhttp.Headers{{Name: "X-A", Value: "1"}}); !reflect.DeepEqual(r.Headers, want) {
		t.Fatalf("headers = %v", r.Headers)
	}
	r = parse(t, 200, zhttp.Headers{{Name: "Grip-Status", Value: "202"}}, "", Options{}).Response
	if r.Code != 202 || r.Reason != "Accepted" {
		t.Fatalf("status = %d %q", r.Code, r.Reason)
	}
	r = parse(t, 299, zhttp.Headers{{Name: "Grip-Channel", Value: "c"}}, "", Options{}).Response
	if r.Code != 299 || r.Reason != "Undefined Reason" {
		t.Fatalf("status = %d %q", r.Code, r.Reason)
	}

	code, reason, hh, err := ClientHead(200, "OK", h)
	if err != nil || code != 304 || reason != "Not Modified Custom" || len(hh) != 1 || hh[0].Name != "X-A" {
		t.Fatalf("ClientHead = %d %q %v %v", code, reason, hh, err)
	}
}

func TestLinksAndLimits(t *testing.T) {
	t.Parallel()
	h := zhttp.Headers{
		{Name: "Grip-Link", Value: "</gone>; rel=gone, </ignored>, </next>; rel=next"},
		{Name: "Grip-Channel", Value: "a, b, c"},
	}
	in := parse(t, 200, h, "", Options{MaxChannels: 2})
	if in.NextLink != "/next" || in.NextLinkTimeout != DefaultNextLinkTimeout || in.GoneLink != "/gone" {
		t.Fatalf("links = %+v", in)
	}
	if len(in.Channels) != 2 || in.Channels[1].Name != "b" {
		t.Fatalf("channels = %+v", in.Channels)
	}
	got, err := ResolveLink("http://example.com/stream/a?x=1", "/next?n=1")
	if err != nil || got != "http://example.com/next?n=1" {
		t.Fatalf("ResolveLink = %q, %v", got, err)
	}
	if in := parse(t, 200, zhttp.Headers{{Name: "Grip-Channel", Value: "a"}}, "", Options{}); in.Hold != HoldNone || in.NextLink != "" {
		t.Fatalf("no hold = %+v", in)
	}
}

func TestIsGRIPAndStrip(t *testing.T) {
	t.Parallel()
	if IsGRIP(zhttp.Headers{{Name: "Content-Type", Value: "text/plain"}}) {
		t.Fatal("plain response detected as GRIP")
	}
	if !IsGRIP(zhttp.Headers{{Name: "grip-hold", Value: "response"}}) {
		t.Fatal("Grip- header not detected")
	}
	if !IsGRIP(zhttp.Headers{{Name: "Content-Type", Value: "application/grip-instruct; charset=utf-8"}}) {
		t.Fatal("instruct content type not detected")
	}
	got := StripGripHeaders(zhttp.Headers{{Name: "GRIP-X", Value: "1"}, {Name: "A", Value: "b"}, {Name: "Gripe", Value: "c"}})
	if want := (zhttp.Headers{{Name: "A", Value: "b"}, {Name: "Gripe", Value: "c"}}); !reflect.DeepEqual(got, want) {
		t.Fatalf("strip = %v", got)
	}
}

func TestStatusReason(t *testing.T) {
	t.Parallel()
	for code, want := range map[int]string{200: "OK", 202: "Accepted", 413: "Request Entity Too Large", 502: "Bad Gateway", 999: "Undefined Reason"} {
		if got := StatusReason(code); got != want {
			t.Errorf("StatusReason(%d) = %q", code, got)
		}
	}
}

func TestDecodeBase64Lenient(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"aGkK": "hi\n", "aGk=": "hi", "aGk": "hi", "a G\nk=": "hi", "aGkKa": "hi\n", "": ""} {
		if got := string(DecodeBase64(in)); got != want {
			t.Errorf("DecodeBase64(%q) = %q, want %q", in, got, want)
		}
	}
}
