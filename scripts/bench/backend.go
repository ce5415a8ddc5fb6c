package main

import (
	"fmt"
	"net"
	"net/http"
	"time"
)

// plainBody is the small fixed body of the passthrough route.
var plainBody = []byte("hello from the bench backend\n")

// backend is the in-process origin both targets proxy to.
type backend struct {
	ln  net.Listener
	srv *http.Server
	ws  *wsBackendStats // the WebSocket-over-HTTP endpoint, /ws/ (wsbackend.go)
}

func startBackend() (*backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("backend listen: %w", err)
	}
	mux := http.NewServeMux()
	// Write errors mean the client went away; the load client counts that.
	mux.HandleFunc("/plain", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(plainBody)
	})
	hold := func(ctype string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			ch := r.URL.Query().Get("ch")
			if ch == "" {
				http.Error(w, "ch missing", http.StatusBadRequest)
				return
			}
			h := w.Header()
			h.Set("Grip-Hold", "stream")
			h.Set("Grip-Channel", ch)
			h.Set("Content-Type", ctype)
			_, _ = w.Write([]byte("ok\n"))
		}
	}
	mux.HandleFunc("/stream", hold("text/plain"))
	mux.HandleFunc("/sse", hold("text/event-stream"))
	wsb := newWSBackendStats()
	mux.HandleFunc(wsPathPrefix, wsb.handleWSEvents)
	b := &backend{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, ws: wsb}
	go func() { _ = b.srv.Serve(ln) }() // ends with ErrServerClosed; a failure shows as failed requests
	return b, nil
}

func (b *backend) addr() string { return b.ln.Addr().String() }

func (b *backend) close() { b.srv.Close() }
