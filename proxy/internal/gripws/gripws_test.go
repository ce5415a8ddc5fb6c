package gripws

import (
	"testing"

	"github.com/pushpin-go/pushpin/proto/grip"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

func TestMessage(t *testing.T) {
	t.Parallel()
	on := Filter{Enabled: true, Prefix: "m:"}
	empty := Filter{Enabled: true, Prefix: ""}
	cases := []struct {
		name   string
		f      Filter
		binary bool
		in     string
		v      Verdict
		out    string
	}{
		{"disabled passes c:", Filter{}, false, `c:{"type":"detach"}`, Pass, `c:{"type":"detach"}`},
		{"disabled passes all", Filter{}, true, "x", Pass, "x"},
		{"control", on, false, `c:{"type":"detach"}`, Control, `{"type":"detach"}`},
		{"prefixed", on, false, "m:welcome", Pass, "welcome"},
		{"unprefixed dropped", on, false, "unprefixed", Drop, ""},
		{"binary prefixed", on, true, "m:\x00\x01", Pass, "\x00\x01"},
		{"binary unprefixed", on, true, "\x00\x01", Drop, ""},
		{"binary c: is data", on, true, "c:x", Drop, ""},
		{"empty prefix passes", empty, false, "anything", Pass, "anything"},
		{"empty prefix control", empty, false, "c:{}", Control, "{}"},
		{"prefix only", on, false, "m:", Pass, ""},
	}
	for _, c := range cases {
		v, out := c.f.Message(c.binary, []byte(c.in))
		if v != c.v || string(out) != c.out {
			t.Errorf("%s: got %v %q, want %v %q", c.name, v, out, c.v, c.out)
		}
	}
}

func TestNewFromExtension(t *testing.T) {
	t.Parallel()
	f := New(grip.ParseWSExtension(zhttp.Headers{{Name: "Sec-WebSocket-Extensions", Value: `grip; message-prefix=""`}}))
	if !f.Enabled || f.Prefix != "" {
		t.Fatalf("got %+v", f)
	}
	f = New(grip.ParseWSExtension(zhttp.Headers{{Name: "Sec-WebSocket-Extensions", Value: "grip"}}))
	if !f.Enabled || f.Prefix != "m:" {
		t.Fatalf("got %+v", f)
	}
	if f = New(grip.ParseWSExtension(nil)); f.Enabled {
		t.Fatalf("got %+v", f)
	}
}

func TestFrames(t *testing.T) {
	t.Parallel()
	type fr struct {
		op   Opcode
		data string
		fin  bool
		v    Verdict
		out  string
	}
	cases := []struct {
		name   string
		f      Filter
		frames []fr
	}{
		{"fragmented prefixed", Filter{Enabled: true, Prefix: "m:"}, []fr{
			{OpText, "m:hel", false, Pass, "hel"},
			{OpControlFrame, "ping", true, Pass, "ping"},
			{OpContinuation, "lo", true, Pass, "lo"},
		}},
		{"fragmented unprefixed dropped whole", Filter{Enabled: true, Prefix: "m:"}, []fr{
			{OpBinary, "xx", false, Drop, ""},
			{OpContinuation, "m:yy", false, Drop, ""},
			{OpContinuation, "zz", true, Drop, ""},
			{OpText, "m:next", true, Pass, "next"},
		}},
		{"fragmented control dropped", Filter{Enabled: true, Prefix: "m:"}, []fr{
			{OpText, `c:{"ty`, false, Drop, ""},
			{OpContinuation, `pe":"detach"}`, true, Drop, ""},
			{OpText, `c:{}`, true, Control, "{}"},
		}},
		{"disabled", Filter{}, []fr{
			{OpText, "c:a", false, Pass, "c:a"},
			{OpContinuation, "b", true, Pass, "b"},
		}},
	}
	for _, c := range cases {
		s := Frames{Filter: c.f}
		for i, f := range c.frames {
			v, out := s.Frame(f.op, []byte(f.data), f.fin)
			if v != f.v || string(out) != f.out {
				t.Errorf("%s frame %d: got %v %q, want %v %q", c.name, i, v, out, f.v, f.out)
			}
		}
	}
}
