package proxy

import (
	"bytes"
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// A request body without Content-Length (chunked from the client) is
// gathered before the backend request starts, so zurl gets it whole in the
// first packet and sends it with Content-Length.
func TestChunkedBodyGathered(t *testing.T) {
	r := newRig(t, []string{"* 127.0.0.1:9"}, "")
	r.request("1-0-b1", "POST", "http://h/", hdr("Host", "h"), []byte("hello "), true, 8192)
	if ack := r.clientRecv(); ack.Type != zhttp.Credit {
		t.Fatalf("ack %+v", ack)
	}
	r.clientSend("1-0-b1", zhttp.Packet{Body: []byte("chunked "), More: true})
	r.clientSend("1-0-b1", zhttp.Packet{Body: []byte("world")})
	z := r.zurlFirst()
	if string(z.Body) != "hello chunked world" || z.More {
		t.Fatalf("first packet to zurl: body %q more %v, want the whole body and no more", z.Body, z.More)
	}
}

// A body exactly at MaxBufferedBody is still gathered; the end may come in
// a packet of its own.
func TestChunkedBodyAtLimitGathered(t *testing.T) {
	r := newRig(t, []string{"* 127.0.0.1:9"}, "")
	r.request("1-0-b2", "POST", "http://h/", hdr("Host", "h"), nil, true, 8192)
	r.clientRecv()
	body := bytes.Repeat([]byte("x"), MaxBufferedBody)
	r.clientSend("1-0-b2", zhttp.Packet{Body: body[:MaxBufferedBody/2], More: true})
	r.clientSend("1-0-b2", zhttp.Packet{Body: body[MaxBufferedBody/2:], More: true})
	r.clientSend("1-0-b2", zhttp.Packet{})
	if z := r.zurlFirst(); len(z.Body) != MaxBufferedBody || z.More {
		t.Fatalf("first packet to zurl: %d bytes, more %v; want %d and no more", len(z.Body), z.More, MaxBufferedBody)
	}
}

// Past MaxBufferedBody the request starts with what came and the rest
// streams.
func TestChunkedBodyPastLimitStreams(t *testing.T) {
	r := newRig(t, []string{"* 127.0.0.1:9"}, "")
	r.request("1-0-b3", "POST", "http://h/", hdr("Host", "h"), nil, true, 8192)
	r.clientRecv()
	piece := bytes.Repeat([]byte("y"), MaxBufferedBody/2+1)
	r.clientSend("1-0-b3", zhttp.Packet{Body: piece, More: true})
	r.clientSend("1-0-b3", zhttp.Packet{Body: piece, More: true})
	z := r.zurlFirst()
	if len(z.Body) != 2*len(piece) || !z.More {
		t.Fatalf("first packet to zurl: %d bytes, more %v; want %d and more", len(z.Body), z.More, 2*len(piece))
	}
	r.clientSend("1-0-b3", zhttp.Packet{Body: []byte("tail")})
	r.zurlSend(z.ID, 0, zhttp.Packet{Type: zhttp.Credit, Credits: 1000, HasCredits: true, Ext: zhttp.Ext{Multi: true}})
	if b := r.zurlRecv(5 * time.Second); string(b.Body) != "tail" || b.More {
		t.Fatalf("streamed rest %+v", b)
	}
}
