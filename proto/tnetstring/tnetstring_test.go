package tnetstring

import (
	"bytes"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// Byte-exact examples from the spec (tnetstring.md), all produced or
// accepted by the real Pushpin 1.36 processes.
var examples = []struct {
	v   any
	enc string
}{
	{"", "0:,"},
	{"hello", "5:hello,"},
	{0, "1:0#"},
	{-42, "3:-42#"},
	{200000, "6:200000#"},
	{true, "4:true!"},
	{false, "5:false!"},
	{nil, "0:~"},
	{[]any{}, "0:]"},
	{map[string]any{}, "0:}"},
	{[]any{"a", 1}, "8:1:a,1:1#]"},
	{map[string]any{"method": "GET"}, "15:6:method,3:GET,}"},
	{map[string]any{"ext": map[string]any{"multi": true}}, "25:3:ext,15:5:multi,4:true!}}"},
	{[][2][]byte{{[]byte("Host"), []byte("x")}}, "15:11:4:Host,1:x,]]"},
}

func TestEncodeExamples(t *testing.T) {
	t.Parallel()
	for _, ex := range examples {
		got, err := Encode(ex.v)
		if err != nil {
			t.Fatalf("encode %#v: %v", ex.v, err)
		}
		if string(got) != ex.enc {
			t.Errorf("encode %#v = %q, want %q", ex.v, got, ex.enc)
		}
	}
}

func norm(v any) any {
	switch x := v.(type) {
	case string:
		return []byte(x)
	case int:
		return int64(x)
	case []any:
		out := []any{}
		for _, i := range x {
			out = append(out, norm(i))
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, i := range x {
			out[k] = norm(i)
		}
		return out
	case [][2][]byte:
		out := []any{}
		for _, h := range x {
			out = append(out, []any{h[0], h[1]})
		}
		return out
	}
	return v
}

func TestDecodeExamples(t *testing.T) {
	t.Parallel()
	for _, ex := range examples {
		got, err := Decode([]byte(ex.enc))
		if err != nil {
			t.Fatalf("decode %q: %v", ex.enc, err)
		}
		if !reflect.DeepEqual(got, norm(ex.v)) {
			t.Errorf("decode %q = %#v, want %#v", ex.enc, got, norm(ex.v))
		}
	}
}

func TestRealKeepAlive(t *testing.T) {
	t.Parallel()
	// condure 1.9.1 keep-alive, as captured (tnetstring.md).
	raw := "86:4:from,7:condure,2:id,5:1-0-4,3:seq,1:2#3:ext,15:5:multi,4:true!}4:type,10:keep-alive,}"
	v, err := Decode([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	m := v.(map[string]any)
	if string(m["type"].([]byte)) != "keep-alive" || m["seq"].(int64) != 2 {
		t.Fatalf("bad decode: %#v", m)
	}
	var keys []string
	e, _, _ := Parse([]byte(raw))
	if err := e.Dict(func(k []byte, _ Elem) error { keys = append(keys, string(k)); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "from,id,seq,ext,type" {
		t.Fatalf("wire order lost: %v", keys)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	cases := map[string]error{
		"":             ErrShort,
		"5:abc,":       ErrShort,
		"x:abc,":       ErrSize,
		":,":           ErrSize,
		"3:abc?":       ErrTag,
		"3:abc":        ErrShort,
		"4:tRUE!":      ErrValue,
		"2:1a#":        ErrValue,
		"1:x~":         ErrValue,
		"8:1:1#1:a,}":  ErrKey,
		"99999999999:": ErrSize,
	}
	for in, want := range cases {
		_, err := Decode([]byte(in))
		if !errors.Is(err, want) {
			t.Errorf("decode %q: err %v, want %v", in, err, want)
		}
	}
	deep := strings.Repeat("[", 1)
	_ = deep
	// Build nesting deeper than MaxDepth.
	b := []byte("0:]")
	for i := 0; i < MaxDepth+1; i++ {
		b, _ = AppendContainer(nil, TagList, func(d []byte) ([]byte, error) { return append(d, b...), nil })
	}
	if _, err := Decode(b); !errors.Is(err, ErrDepth) {
		t.Errorf("deep nesting: err %v, want ErrDepth", err)
	}
}

func TestIntFromString(t *testing.T) {
	t.Parallel()
	e, _, err := Parse([]byte("5:48330,"))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := e.Int(); err != nil || v != 48330 {
		t.Fatalf("Int() = %d, %v", v, err)
	}
}

func TestAppendContainerLarge(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("x"), 1<<20)
	enc, err := Encode([]any{big})
	if err != nil {
		t.Fatal(err)
	}
	v, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(v.([]any)[0].([]byte), big) {
		t.Fatal("round trip mismatch")
	}
}

func FuzzDecode(f *testing.F) {
	for _, ex := range examples {
		f.Add([]byte(ex.enc))
	}
	real := []byte("86:4:from,7:condure,2:id,5:1-0-4,3:seq,1:2#3:ext,15:5:multi,4:true!}4:type,10:keep-alive,}")
	f.Add(real)
	for i := range real {
		f.Add(real[:i])
	}
	f.Add([]byte("38:7:success,4:true!5:value,0:~2:id,2:x1,}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Decode(b)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode and decode to the same value.
		enc, err := Encode(v)
		if err != nil {
			t.Fatalf("re-encode %#v: %v", v, err)
		}
		v2, err := Decode(enc)
		if err != nil {
			t.Fatalf("decode of re-encoding %q: %v", enc, err)
		}
		if !reflect.DeepEqual(v, v2) {
			t.Fatalf("round trip: %#v != %#v", v, v2)
		}
	})
}

func BenchmarkDecodeKeepAlive(b *testing.B) {
	raw := []byte("86:4:from,7:condure,2:id,5:1-0-4,3:seq,1:2#3:ext,15:5:multi,4:true!}4:type,10:keep-alive,}")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		e, _, _ := Parse(raw)
		_ = e.Dict(func(k []byte, v Elem) error { return nil })
	}
}

// The size prefix and integer fast paths write what strconv does, at every
// digit-count boundary.
func TestPrefixDigits(t *testing.T) {
	for _, n := range []int{0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 1001, 12345, 1 << 20} {
		s := strings.Repeat("x", n)
		if got, want := string(AppendString(nil, s)), strconv.Itoa(n)+":"+s+","; got != want {
			t.Fatalf("string of %d: %.20q", n, got)
		}
	}
	for _, v := range []int64{-10, -1, 0, 1, 9, 10, 99, 100, 12345678901} {
		d := strconv.FormatInt(v, 10)
		if got, want := string(AppendInt(nil, v)), strconv.Itoa(len(d))+":"+d+"#"; got != want {
			t.Fatalf("int %d: %q, want %q", v, got, want)
		}
	}
}
