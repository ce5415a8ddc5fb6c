package handoff

import (
	"reflect"
	"testing"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

func sampleAccept() *Accept {
	return &Accept{
		Sessions: []Session{{Sender: "condure", ID: "0-0-1", InSeq: 3, OutSeq: 2, OutCredits: 8192, Multi: true, MultiData: true,
			PeerAddress: "127.0.0.1", UserData: []byte("1:x,")}},
		Request:  HTTPData{Method: "GET", URI: "http://a/stream", Headers: zhttp.Headers{{Name: "Host", Value: "a"}}, Body: []byte{}},
		Response: HTTPData{Code: 200, Reason: "OK", Headers: zhttp.Headers{{Name: "Grip-Hold", Value: "stream"}, {Name: "Grip-Channel", Value: "test"}}, Body: []byte("hi\n")},
		Route:    "r1", ChannelPrefix: "p.", Channels: []string{"s1"}, Trusted: true,
	}
}

func TestAcceptRoundTrip(t *testing.T) {
	t.Parallel()
	a := sampleAccept()
	b, err := ParseAccept(a.AppendMessage(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("\n%+v\n%+v", a, b)
	}
}

func TestRetryRoundTrip(t *testing.T) {
	t.Parallel()
	r := &Retry{Sessions: sampleAccept().Sessions, Request: sampleAccept().Request,
		LastIDs: map[string]string{"test": "7"}, Route: "r1"}
	q, err := ParseRetry(r.AppendMessage(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r, q) {
		t.Fatalf("\n%+v\n%+v", r, q)
	}
}

func TestBad(t *testing.T) {
	t.Parallel()
	for _, m := range []string{"", "X", "T3:abc,", "T0:}"} {
		if _, err := ParseAccept([]byte(m)); err == nil {
			t.Errorf("%q accepted", m)
		}
	}
}

func FuzzParseAccept(f *testing.F) {
	f.Add(sampleAccept().AppendMessage(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAccept(b)
		if err != nil {
			return
		}
		if _, err := ParseAccept(a.AppendMessage(nil)); err != nil {
			t.Fatalf("re-encoding does not parse: %v", err)
		}
	})
}
