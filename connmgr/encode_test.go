package connmgr

import (
	"strings"
	"testing"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// The first packet's buffer is sized up front; a request with the headers
// browsers send must fit without growing it.
func TestFirstPacketSize(t *testing.T) {
	for _, n := range []int{0, 1, 12, 40} {
		var h zhttp.Headers
		for i := range n {
			h = append(h, zhttp.Header{Name: "X-Header-" + strings.Repeat("n", i%7), Value: strings.Repeat("v", 1+i*3)})
		}
		p := &zhttp.Packet{From: "condure", ID: "12345-67-8a", Seq: 0, HasSeq: true, Ext: ourExt,
			Method: "GET", URI: "http://example.com/some/path?q=" + strings.Repeat("x", n), Headers: h, HasHeaders: true,
			Stream: true, Credits: 8192, HasCredits: true, PeerAddress: "127.0.0.1", PeerPort: 54321}
		size := firstPacketSize(p)
		if got := len(p.AppendMessage(nil)); got > size {
			t.Errorf("%d headers: %d bytes, sized %d", n, got, size)
		}
	}
}
