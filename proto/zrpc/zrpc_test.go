package zrpc

import (
	"reflect"
	"testing"

	ts "github.com/pushpin-go/pushpin/proto/tnetstring"
)

func TestRequestRoundTrip(t *testing.T) {
	b, err := ts.Encode(map[string]any{"id": []byte("7"), "method": []byte("refresh"), "args": map[string]any{"cid": []byte("c1")}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.ID.([]byte)) != "7" || r.Method != "refresh" || string(r.Args["cid"].([]byte)) != "c1" {
		t.Fatalf("got %+v", r)
	}
	if _, err := ParseRequest([]byte("3:abc,")); err == nil {
		t.Fatal("a string accepted as a request")
	}
}

func TestReply(t *testing.T) {
	for _, c := range []struct {
		id        any
		ok        bool
		condition string
		value     any
		want      map[string]any
	}{
		{nil, true, "", nil, map[string]any{"success": true, "value": nil}},
		{[]byte("1"), false, "item-not-found", nil, map[string]any{"success": false, "id": []byte("1"), "condition": []byte("item-not-found")}},
		{[]byte("2"), false, "bad-request", "why", map[string]any{"success": false, "id": []byte("2"), "condition": []byte("bad-request"), "value": []byte("why")}},
	} {
		v, err := ts.Decode(Reply(c.id, c.ok, c.condition, c.value))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(v, c.want) {
			t.Errorf("Reply(%v, %v, %q, %v) = %v, want %v", c.id, c.ok, c.condition, c.value, v, c.want)
		}
	}
}

func TestSplitEnvelope(t *testing.T) {
	env, req, ok := SplitEnvelope([][]byte{[]byte("a"), []byte("b"), {}, []byte("req")})
	if !ok || len(env) != 3 || string(req) != "req" {
		t.Fatalf("env %q req %q ok %v", env, req, ok)
	}
	for _, bad := range [][][]byte{{[]byte("req")}, {{}, []byte("a"), []byte("b")}, {[]byte("a"), {}}} {
		if _, _, ok := SplitEnvelope(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}
