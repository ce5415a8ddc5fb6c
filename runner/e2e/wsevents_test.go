package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The test backends' own reading and writing of application/websocket-events
// bodies (websocket-over-http.md §3). Written apart from proto/wsevents on
// purpose: a backend that shared the codec under test would agree with its
// bugs.

// wohEvent is one event: its type and content (nil when it had none).
type wohEvent struct {
	typ     string
	content []byte
}

// parseWOHEvents parses a body.
func parseWOHEvents(b []byte) ([]wohEvent, error) {
	var out []wohEvent
	for len(b) > 0 {
		i := bytes.Index(b, []byte("\r\n"))
		if i < 0 {
			return nil, errors.New("event line without CRLF")
		}
		line := string(b[:i])
		b = b[i+2:]
		typ, hexLen, hasLen := strings.Cut(line, " ")
		ev := wohEvent{typ: typ}
		if hasLen {
			n, err := strconv.ParseInt(hexLen, 16, 32)
			if err != nil || int(n)+2 > len(b) {
				return nil, fmt.Errorf("bad event length %q", hexLen)
			}
			ev.content = b[:n]
			b = b[n+2:]
		}
		out = append(out, ev)
	}
	return out, nil
}

// appendWOHEvent appends one event, without a length when content is
// empty (as Pushpin writes them).
func appendWOHEvent(b []byte, typ string, content []byte) []byte {
	if len(content) == 0 {
		return append(b, typ+"\r\n"...)
	}
	b = fmt.Appendf(b, "%s %x\r\n", typ, len(content))
	b = append(b, content...)
	return append(b, "\r\n"...)
}
