package wsframe

import (
	"fmt"
	"strings"
	"testing"
)

// FuzzReader: whatever the input, the reader does not panic, and feeding
// it in two pieces cut at any byte (as reads from a socket would) gives
// the same messages, control frames and error as feeding it whole.
func FuzzReader(f *testing.F) {
	for _, in := range seqs {
		if len(in) > 512 {
			continue
		}
		f.Add(in, uint16(1<<15))
		f.Add(in, uint16(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, max uint16) {
		if len(in) > 512 {
			return
		}
		m := int(max)
		if m == 0 {
			m = 1
		}
		want := outcome(parseAll(&Reader{MaxMessage: 1 << 16, Deflate: true}, in, nil, m))
		for cut := 0; cut <= len(in); cut++ {
			if g := outcome(parseAll(&Reader{MaxMessage: 1 << 16, Deflate: true}, in, []int{cut}, m)); g != want {
				t.Fatalf("cut at %d:\n got %s\nwant %s", cut, g, want)
			}
		}
	})
}

// outcome is what must not depend on the cuts: the complete messages and
// control frames, and the error. How much of a message that then fails
// came out before the error does depend on them (pieces are passed on as
// they arrive), so a partial message is left out when there is an error.
func outcome(ev []string, err error) string {
	m := ev
	if err != nil && len(m) > 0 && strings.HasPrefix(m[len(m)-1], "partial ") {
		m = m[:len(m)-1]
	}
	return fmt.Sprint(m, err)
}
