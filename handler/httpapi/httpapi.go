// Package httpapi is the handler's HTTP control API (push_in_http_addr:
// push_in_http_port): POST /publish/ and /recover/, with Pushpin 1.36's
// status codes, bodies and limits (publish.md §2).
package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/proto/publish"
)

// Limits as Pushpin's defaults.
const (
	DefaultMaxHeadersSize = 10000
	DefaultMaxBodySize    = 1000000
)

// Timeouts of the control server, so that a client that never finishes its
// request head (or sends nothing at all), or its body, does not hold a
// connection for ever. The read timeout covers head and body: a 1 MB body
// needs only 17 KB/s. Every response closes the connection, so the idle
// timeout (the wait for a next request on a kept connection) is a
// safeguard.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
)

// Server answers control requests; Publish and Recover are called with
// validated input (items are delivered after the response, as Pushpin).
// A nil Recover answers /recover with 501: recover is not supported yet.
type Server struct {
	Publish        func(items []publish.Item)
	Recover        func()
	MaxHeadersSize int
	MaxBodySize    int
	// ReadHeaderTimeout, ReadTimeout and IdleTimeout, when zero, are
	// DefaultReadHeaderTimeout, DefaultReadTimeout and DefaultIdleTimeout.
	ReadHeaderTimeout, ReadTimeout, IdleTimeout time.Duration
	Log                                         zerolog.Logger
}

// HTTPServer returns a net/http server for addr serving s.
func (s *Server) HTTPServer(addr string) *http.Server {
	mh := s.MaxHeadersSize
	if mh <= 0 {
		mh = DefaultMaxHeadersSize
	}
	or := func(d, def time.Duration) time.Duration {
		if d <= 0 {
			return def
		}
		return d
	}
	return &http.Server{Addr: addr, Handler: s, MaxHeaderBytes: mh,
		ReadHeaderTimeout: or(s.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       or(s.ReadTimeout, DefaultReadTimeout),
		IdleTimeout:       or(s.IdleTimeout, DefaultIdleTimeout)}
}

func reply(w http.ResponseWriter, code int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain")
	h.Set("Connection", "close")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body) // an error is the client gone: nobody left to tell
}

// negotiate picks text or JSON from Accept as Pushpin does; ok is false
// when nothing listed is supported.
func negotiate(r *http.Request) (json, ok bool) {
	accept := r.Header.Values("Accept")
	if len(accept) == 0 {
		return false, true
	}
	found := false
	for _, line := range accept {
		for _, t := range strings.Split(line, ",") {
			t = strings.TrimSpace(t)
			if i := strings.IndexByte(t, ';'); i >= 0 {
				t = strings.TrimSpace(t[:i])
			}
			switch t {
			case "text/plain", "text/*", "*/*", "*":
				json, found = false, true
			case "application/json", "application/*":
				json, found = true, true
			}
		}
	}
	return json, found
}

func success(w http.ResponseWriter, r *http.Request, msg string) {
	json, ok := negotiate(r)
	if !ok {
		reply(w, http.StatusNotAcceptable, "Not Acceptable. Supported formats are text/plain and application/json.\n")
		return
	}
	if json {
		body := fmt.Sprintf("{\"message\":%q}\n", msg)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Connection", "close")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, body) // an error is the client gone: nobody left to tell
		return
	}
	reply(w, http.StatusOK, msg+"\n")
}

// ServeHTTP implements the routes of publish.md §2.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	code, size := s.serve(w, r, path)
	s.Log.Info().Str("method", r.Method).Str("path", r.URL.Path).Int("code", code).Int("size", size).Msg("control")
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, path string) (int, int) {
	switch path {
	case "":
		reply(w, http.StatusOK, "Pushpin API\n")
		return 200, 0
	case "/publish", "/recover":
	default:
		reply(w, http.StatusNotFound, "Not Found\n")
		return 404, 0
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		reply(w, http.StatusMethodNotAllowed, fmt.Sprintf("Method not allowed: %s.\n", r.Method))
		return 405, 0
	}
	if r.ContentLength < 0 {
		reply(w, http.StatusLengthRequired, "Request requires Content-Length.\n")
		return 411, 0
	}
	maxBody := s.MaxBodySize
	if maxBody <= 0 {
		maxBody = DefaultMaxBodySize
	}
	if r.ContentLength > int64(maxBody) {
		reply(w, http.StatusBadRequest, "Request body too large.\n")
		return 400, 0
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(maxBody)+1))
	if err != nil {
		reply(w, http.StatusBadRequest, "Failed to read request body.\n")
		return 400, 0
	}
	if path == "/recover" {
		if s.Recover == nil {
			reply(w, http.StatusNotImplemented, "Recover is not supported yet.\n")
			return 501, len(body)
		}
		s.Recover()
		success(w, r, "Updated")
		return 200, len(body)
	}
	items, err := publish.ParseJSONItems(body)
	if err != nil {
		var pe *publish.Error
		msg := "Invalid format.\n"
		if errors.As(err, &pe) {
			msg = pe.Text + "\n"
		}
		s.Log.Warn().Str("reason", strings.TrimSpace(msg)).Msg("rejected publish")
		reply(w, http.StatusBadRequest, msg)
		return 400, len(body)
	}
	if _, ok := negotiate(r); !ok {
		reply(w, http.StatusNotAcceptable, "Not Acceptable. Supported formats are text/plain and application/json.\n")
		return 406, len(body)
	}
	if s.Publish != nil && len(items) > 0 {
		s.Publish(items)
	}
	success(w, r, "Published")
	return 200, len(body)
}
