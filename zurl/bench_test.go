package zurl

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// BenchmarkRequest is a proxied request end to end (zhttp in, HTTP to a
// loopback backend, zhttp out), sweeping the response size.
func BenchmarkRequest(b *testing.B) {
	for _, size := range []int{100, 64 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("body_%d", size), func(b *testing.B) {
			body := bytes.Repeat([]byte("x"), size)
			be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { backendWrite(b, w, body) }))
			defer be.Close()
			r := startZurl(b, nil)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p := r.request(&zhttp.Packet{ID: fmt.Sprint("b", i), Method: "GET", URI: be.URL + "/", Credits: 200000,
					HasCredits: true, IgnorePolicies: true})
				if _, _, got := r.readResponse(p); len(got) != size {
					b.Fatalf("%d bytes", len(got))
				}
			}
		})
	}
}
