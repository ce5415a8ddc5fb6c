package runner

import (
	"bytes"
	"strings"
	"testing"
)

func TestInsertLabel(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"[INFO] 2026-11-22 09:29:02.447 [condure] starting...\n", "[INFO] 2026-11-22 09:29:02.447 [condure] [condure] starting...\n"},
		{"[WARN] 2026-11-22 09:29:02.447 x\n", "[WARN] 2026-11-22 09:29:02.447 [condure] x\n"},
		{"plain line\n", "[condure] plain line\n"},
		{"[INFO] not a time\n", "[condure] [INFO] not a time\n"},
		{"[info] 2026-11-22 09:29:02.447 lower\n", "[condure] [info] 2026-11-22 09:29:02.447 lower\n"},
		{"[INFO] 2026-11-22 09:29:02.44\n", "[condure] [INFO] 2026-11-22 09:29:02.44\n"},
		{"", "[condure] "},
		{"[", "[condure] ["},
	}
	for _, c := range cases {
		if got := string(InsertLabel(nil, []byte(c.in), "condure")); got != c.want {
			t.Errorf("InsertLabel(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCopyLabelled(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", maxLine+100)
	in := "[INFO] 2026-11-22 09:29:02.447 one\ntwo\n" + long + "\nlast without newline"
	var out bytes.Buffer
	if err := copyLabelled(&out, strings.NewReader(in), "proxy"); err != nil {
		t.Fatal(err)
	}
	want := "[INFO] 2026-11-22 09:29:02.447 [proxy] one\n[proxy] two\n[proxy] " + long + "\n[proxy] last without newline\n"
	if out.String() != want {
		t.Fatalf("got %d bytes, want %d; head %q", out.Len(), len(want), out.String()[:80])
	}
}

func FuzzInsertLabel(f *testing.F) {
	f.Add([]byte("[INFO] 2026-11-22 09:29:02.447 [condure] starting...\n"))
	f.Add([]byte("plain\n"))
	f.Add([]byte("[ERR] 2026-11-22 09:29:02.447 "))
	f.Fuzz(func(t *testing.T, line []byte) {
		out := InsertLabel(nil, line, "h")
		if len(out) != len(line)+4 || !bytes.Contains(out, []byte("[h] ")) {
			t.Fatalf("%q -> %q", line, out)
		}
		n := headerLen(line)
		if !bytes.Equal(out[:n], line[:n]) || !bytes.Equal(out[n+4:], line[n:]) {
			t.Fatalf("%q -> %q: line not kept around the label", line, out)
		}
	})
}
