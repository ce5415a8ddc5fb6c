package wsframe

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

// clientFrame is a masked frame as a client sends it.
func clientFrame(fin bool, op ws.OpCode, rsv byte, payload string) []byte {
	f := ws.NewFrame(op, fin, []byte(payload))
	f.Header.Rsv = rsv
	f = ws.MaskFrameWith(f, [4]byte{0x11, 0x22, 0x33, 0x44})
	var b bytes.Buffer
	if err := ws.WriteFrame(&b, f); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// parseAll runs a Reader over in, fed in pieces cut at the given offsets
// (the caller's buffer: unconsumed bytes stay in front of the next read),
// and describes every message (its pieces joined) and control frame, in
// order; an unfinished message last, as "partial ...".
func parseAll(r *Reader, in []byte, cuts []int, max int) ([]string, error) {
	in = bytes.Clone(in)
	var out []string
	var msg []byte
	inMsg := false
	var buf []byte
	prev := 0
	finish := func() []string {
		if inMsg {
			return append(out, "partial "+string(msg))
		}
		return out
	}
	for _, cut := range append(cuts, len(in)) {
		buf = append(buf, in[prev:cut]...)
		prev = cut
		for {
			f, n, err := r.Next(buf, max)
			buf = buf[n:]
			if err != nil {
				return finish(), err
			}
			if f.Kind == NeedMore || f.Kind == Blocked {
				break
			}
			if f.Kind != Data {
				out = append(out, describe(f))
				continue
			}
			if !inMsg {
				msg = fmt.Appendf(msg[:0], "msg op=%d z=%v ", f.Op, f.Compressed)
				inMsg = true
			}
			msg = append(msg, f.Payload...)
			if f.End {
				out = append(out, string(msg))
				inMsg = false
			}
		}
	}
	return finish(), nil
}

func describe(f Frame) string {
	if f.Kind == Close {
		return fmt.Sprintf("close %d %q", f.Code, f.Reason)
	}
	return fmt.Sprintf("kind=%d %q", f.Kind, f.Payload)
}

var seqs = map[string][]byte{
	"text":   clientFrame(true, ws.OpText, 0, "hello"),
	"binary": clientFrame(true, ws.OpBinary, 0, "\x00\x01\xff"),
	"fragmented with interleaved ping": cat(
		clientFrame(false, ws.OpText, 0, "hé"),
		clientFrame(true, ws.OpPing, 0, "pp"),
		clientFrame(false, ws.OpContinuation, 0, ""),
		clientFrame(true, ws.OpContinuation, 0, "llo wörld")),
	"long":       clientFrame(true, ws.OpBinary, 0, strings.Repeat("x", 70000)),
	"medium":     clientFrame(true, ws.OpText, 0, strings.Repeat("y", 300)),
	"close":      clientFrame(true, ws.OpClose, 0, "\x0f\xa1bye"),
	"empty text": cat(clientFrame(true, ws.OpText, 0, ""), clientFrame(true, ws.OpPong, 0, "")),
	"compressed": cat(clientFrame(false, ws.OpText, 4, "\xf2\x48"), clientFrame(true, ws.OpContinuation, 0, "\xcd\xc9\xc9\x07\x00")),
}

func TestReaderSequences(t *testing.T) {
	want := map[string][]string{
		"text":                             {`msg op=1 z=false hello`},
		"binary":                           {"msg op=2 z=false \x00\x01\xff"},
		"fragmented with interleaved ping": {`kind=3 "pp"`, `msg op=1 z=false héllo wörld`},
		"close":                            {`close 4001 "bye"`},
		"empty text":                       {`msg op=1 z=false `, `kind=4 ""`},
		"compressed":                       {"msg op=1 z=true \xf2\x48\xcd\xc9\xc9\x07\x00"},
	}
	for name, in := range seqs {
		r := &Reader{MaxMessage: 1 << 20, Deflate: true}
		ev, err := parseAll(r, in, nil, 1<<30)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if w, ok := want[name]; ok && fmt.Sprint(ev) != fmt.Sprint(w) {
			t.Errorf("%s: got %q, want %q", name, ev, w)
		}
	}
}

// A piece never exceeds max; a ping bigger than max waits whole.
func TestReaderMax(t *testing.T) {
	r := &Reader{MaxMessage: 1 << 20}
	in := cat(clientFrame(true, ws.OpText, 0, "0123456789"), clientFrame(true, ws.OpPing, 0, "abcd"))
	f, n, err := r.Next(in, 4)
	if err != nil || f.Kind != Data || string(f.Payload) != "0123" || f.End {
		t.Fatalf("first piece %+v %v", f, err)
	}
	in = in[n:]
	f, n, _ = r.Next(in, 0)
	if f.Kind != Blocked || n != 0 {
		t.Fatalf("max 0: %+v n=%d", f, n)
	}
	f, n, _ = r.Next(in, 100)
	if string(f.Payload) != "456789" || !f.End {
		t.Fatalf("rest %+v", f)
	}
	in = in[n:]
	if f, n, _ = r.Next(in, 3); f.Kind != Blocked || n != 0 {
		t.Fatalf("ping over max: %+v n=%d", f, n)
	}
	if f, _, _ = r.Next(in, 4); f.Kind != Ping || string(f.Payload) != "abcd" {
		t.Fatalf("ping %+v", f)
	}
}

func TestReaderErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		code ws.StatusCode
	}{
		{"unmasked", []byte{0x81, 0x01, 'a'}, 1002},
		{"reserved opcode", clientFrame(true, 3, 0, "x"), 1002},
		{"rsv1 without deflate", clientFrame(true, ws.OpText, 4, "x"), 1002},
		{"rsv2", clientFrame(true, ws.OpText, 2, "x"), 1002},
		{"long ping", clientFrame(true, ws.OpPing, 0, strings.Repeat("p", 126)), 1002},
		{"fragmented ping", clientFrame(false, ws.OpPing, 0, "p"), 1002},
		{"continuation first", clientFrame(true, ws.OpContinuation, 0, "x"), 1002},
		{"text inside text", cat(clientFrame(false, ws.OpText, 0, "a"), clientFrame(true, ws.OpText, 0, "b")), 1002},
		{"close 1 byte", clientFrame(true, ws.OpClose, 0, "\x03"), 1002},
		{"close code 1005", clientFrame(true, ws.OpClose, 0, "\x03\xed"), 1002},
		{"close code 999", clientFrame(true, ws.OpClose, 0, "\x03\xe7"), 1002},
		{"close code 5000", clientFrame(true, ws.OpClose, 0, "\x13\x88"), 1002},
		{"close reason not UTF-8", clientFrame(true, ws.OpClose, 0, "\x03\xe8\xff"), 1007},
		{"invalid UTF-8", clientFrame(true, ws.OpText, 0, "a\xc0\xafb"), 1007},
		{"truncated UTF-8 at end", clientFrame(true, ws.OpText, 0, "a\xe2\x82"), 1007},
		{"surrogate split over frames", cat(clientFrame(false, ws.OpText, 0, "\xed"), clientFrame(true, ws.OpContinuation, 0, "\xa0\x80")), 1007},
		{"too big", clientFrame(true, ws.OpBinary, 0, strings.Repeat("b", 101)), 1009},
		{"too big over fragments", cat(clientFrame(false, ws.OpBinary, 0, strings.Repeat("b", 60)), clientFrame(true, ws.OpContinuation, 0, strings.Repeat("b", 60))), 1009},
	} {
		_, err := parseAll(&Reader{MaxMessage: 100}, tc.in, nil, 1<<20)
		var we *Error
		if !errors.As(err, &we) || we.Code != tc.code {
			t.Errorf("%s: got %v, want code %d", tc.name, err, tc.code)
		}
	}
}

func TestAppendHeaderMatchesGobwas(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 1 << 20} {
		for _, fin := range []bool{true, false} {
			for _, op := range []ws.OpCode{ws.OpText, ws.OpContinuation, ws.OpClose} {
				var want bytes.Buffer
				h := ws.Header{Fin: fin, OpCode: op, Length: int64(n), Rsv: ws.Rsv(op == ws.OpText, false, false)}
				if err := ws.WriteHeader(&want, h); err != nil {
					t.Fatal(err)
				}
				if got := AppendHeader(nil, fin, op == ws.OpText, op, n); !bytes.Equal(got, want.Bytes()) {
					t.Errorf("len %d fin %v op %d: %x, want %x", n, fin, op, got, want.Bytes())
				}
			}
		}
	}
	if got := ClosePayload(nil, 1000, strings.Repeat("é", 100)); len(got) != 2+122 {
		t.Errorf("close payload %d bytes", len(got))
	}
}

func TestUTF8Pieces(t *testing.T) {
	s := "aé€😀z"
	for i := 0; i <= len(s); i++ {
		for j := i; j <= len(s); j++ {
			var u UTF8
			if !u.Write([]byte(s[:i])) || !u.Write([]byte(s[i:j])) || !u.Write([]byte(s[j:])) || !u.Done() {
				t.Fatalf("valid text split at %d,%d rejected", i, j)
			}
		}
	}
	bad := "a\xf0\x9f\x98z"
	for i := 0; i <= len(bad); i++ {
		var u UTF8
		if u.Write([]byte(bad[:i])) && u.Write([]byte(bad[i:])) && u.Done() {
			t.Fatalf("invalid text split at %d accepted", i)
		}
	}
}
