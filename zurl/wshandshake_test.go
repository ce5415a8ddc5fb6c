package zurl

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

const fuzzKey = "dGhlIHNhbXBsZSBub25jZQ=="

func fuzzAccept() string {
	sum := sha1.Sum([]byte(fuzzKey + wsGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// FuzzReadWSResponse: the handshake answer parses the same whether it
// comes whole or a byte at a time (split at every byte), never panics,
// accepts a 101 only with our key's Sec-WebSocket-Accept, and keeps at
// most rejectBodyMax bytes of a refusal.
func FuzzReadWSResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + fuzzAccept() +
			"\r\nSec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: grip\r\n\r\n\x81\x02hi",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: wrong\r\n\r\n",
		"HTTP/1.1 403 Forbidden\r\nX-Why: nope\r\nContent-Length: 7\r\n\r\ngo away",
		"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"HTTP/1.0 500 Oops\r\n\r\nclose-delimited body",
		"HTTP/1.1 200\r\n\r\n",
		"garbage\r\n\r\n",
		"HTTP/1.1 101 X\r\n folded: header\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		h1, err1 := readWSResponse(bufio.NewReader(strings.NewReader(raw)), fuzzKey)
		h2, err2 := readWSResponse(bufio.NewReader(iotest.OneByteReader(strings.NewReader(raw))), fuzzKey)
		if !reflect.DeepEqual(h1, h2) || (err1 == nil) != (err2 == nil) {
			t.Fatalf("whole: %+v %v; byte by byte: %+v %v", h1, err1, h2, err2)
		}
		var r1, r2 *rejectedError
		if errors.As(err1, &r1) != errors.As(err2, &r2) || (r1 != nil && !reflect.DeepEqual(r1, r2)) {
			t.Fatalf("refusals differ: %+v / %+v", r1, r2)
		}
		if r1 != nil && len(r1.body) > rejectBodyMax {
			t.Fatalf("refusal body of %d bytes", len(r1.body))
		}
		if h1 != nil && (h1.code != 101 || h1.headers.Get("Sec-WebSocket-Accept") != fuzzAccept()) {
			t.Fatalf("accepted %+v", h1)
		}
	})
}
