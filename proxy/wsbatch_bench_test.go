package proxy

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/pushpin-go/pushpin/proto/wscontrol"
)

// BenchmarkWSMultiSend is one ws-message published to 500 WebSocket
// sessions behind an ext.multi-data connection manager: the ws-control
// item in, the shared packet out (CPU per message, proxy only; the
// sessions have credits for every message).
func BenchmarkWSMultiSend(b *testing.B) {
	r := newWSRig(&testing.T{}, "* 127.0.0.1:9")
	const n = 500
	var cids []string
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("bm-%d", i)
		r.open(id, 1<<40, true, hdr("Sec-WebSocket-Extensions", "grip"))
		cids = append(cids, r.ctlNext(wscontrol.Here).CID)
	}
	it := wscontrol.NewItem(cids[0], wscontrol.Send)
	it.CIDs, it.Message = cids[1:], bytes.Repeat([]byte("x"), 1024)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.ctlSend(it)
		if got := r.clientRecv(); len(got.IDs) != n {
			b.Fatalf("shared packet for %d sessions, want %d", len(got.IDs), n)
		}
	}
}
