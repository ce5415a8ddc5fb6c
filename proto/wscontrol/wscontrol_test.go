package wscontrol

import (
	"bytes"
	"reflect"
	"testing"
)

// A packet as Pushpin 1.36's proxy writes it (fields in its QVariantMap
// order) decodes to the items it names.
func TestParsePushpinPacket(t *testing.T) {
	msg := []byte("86:5:items,74:70:3:cid,9:conn-1234,4:type,4:here,3:uri,17:ws://example/path,3:ttl,2:60#}]}")
	items, err := Parse(msg)
	if err != nil {
		t.Fatal(err)
	}
	want := NewItem("conn-1234", Here)
	want.URI = "ws://example/path"
	want.TTL = 60
	if len(items) != 1 || !reflect.DeepEqual(items[0], want) {
		t.Fatalf("got %+v, want %+v", items, want)
	}
}

func TestRoundTripEveryType(t *testing.T) {
	var items []Item
	for _, ty := range []Type{Here, KeepAlive, Gone, Cancel, Grip, Subscribe, Ack, Send, Close, Detach, KeepAliveSetup, NeedKeepAlive} {
		it := NewItem("c-"+string(ty), ty)
		items = append(items, it)
	}
	send := NewItem("a", Send)
	send.CIDs = []string{"b", "c"}
	send.ContentType = "binary"
	send.Message = []byte{0, 1, 2}
	send.Queue = true
	send.ReqID = "r1"
	items = append(items, send)
	cl := NewItem("a", Close)
	cl.Code, cl.Reason = 4001, "bye"
	ka := NewItem("a", KeepAliveSetup)
	ka.Timeout, ka.KeepAliveMode = 30, "interval"
	here := NewItem("a", Here)
	here.URI, here.Route, here.ChannelPrefix, here.SeparateStats, here.TTL, here.MultiSend = "ws://h/p", "r", "pre-", true, 60, true
	sub := NewItem("a", Subscribe)
	sub.Channel = "ch"
	grip := NewItem("a", Grip)
	grip.Message, grip.HasMessage = []byte(`{"type":"subscribe","channel":"x"}`), true
	items = append(items, cl, ka, here, sub, grip)

	got, err := Parse(Append(nil, items))
	if err != nil {
		t.Fatal(err)
	}
	for i := range items {
		if items[i].Message != nil {
			items[i].HasMessage = true
		}
	}
	if !reflect.DeepEqual(got, items) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, items)
	}
}

func TestParseRefusesBadPackets(t *testing.T) {
	for _, msg := range []string{
		"",
		"0:~",
		"2:{}",                               // not a dict
		"0:}",                                // no items
		"11:5:items,0:]}x",                   // trailing bytes
		"30:5:items,18:14:4:type,4:here,}]}", // no cid
		"24:5:items,12:9:3:cid,0:,}]}",       // no type
		"36:5:items,24:20:3:cid,0:,4:type,1:x,}]}",              // unknown type
		"49:5:items,37:33:3:cid,0:,4:type,4:here,3:ttl,1:x,}]}", // ttl not an int
	} {
		if _, err := Parse([]byte(msg)); err == nil {
			t.Errorf("%q: accepted", msg)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("86:5:items,74:70:3:cid,9:conn-1234,4:type,4:here,3:uri,17:ws://example/path,3:ttl,2:60#}]}"))
	it := NewItem("x", Send)
	it.CIDs, it.Message, it.ContentType = []string{"y"}, []byte("hi"), "text"
	f.Add(Append(nil, []Item{it}))
	f.Fuzz(func(t *testing.T, b []byte) {
		items, err := Parse(b)
		if err != nil {
			return
		}
		again, err := Parse(Append(nil, items))
		if err != nil {
			t.Fatalf("re-parse of %q: %v", b, err)
		}
		if !bytes.Equal(Append(nil, again), Append(nil, items)) {
			t.Fatalf("not stable: %q", b)
		}
	})
}
