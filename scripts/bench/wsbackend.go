package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
)

// The backend's WebSocket-over-HTTP side (spec: websocket-over-http.md):
// both targets reach it on the `over_http` route of the /ws/ paths. Every
// request is a POST of application/websocket-events; the backend keeps no
// state, as WebSocket-over-HTTP intends.
//
//	OPEN        → OPEN, TEXT `c:{"type":"subscribe","channel":"<ch>"}`, TEXT "ok",
//	              with Sec-WebSocket-Extensions: grip; message-prefix=""
//	TEXT/BINARY → the same message back (echo)
//	CLOSE       → CLOSE with the same code (the close handshake)
//	DISCONNECT, PING, PONG → nothing
//
// "ok" tells the client the session is open (as "ok\n" does for a stream
// hold); the publishes then reach it on channel ch (the `ch` query
// parameter of the client's URL, which the POST keeps).

const (
	wsEventsType = "application/websocket-events"
	wsEventsMax  = 1 << 20 // a request body beyond this is not ours
	wsWelcome    = "ok"
)

// wsEvent is one WebSocket-over-HTTP event.
type wsEvent struct {
	typ     string
	content []byte
}

var errWSEvents = errors.New("malformed websocket-events body")

// parseWSEvents splits a websocket-events body: `TYPE [hexlen CRLF content]
// CRLF`, as Pushpin 1.36 reads it (the CRLF after content is required here,
// where Pushpin skips two bytes unchecked).
func parseWSEvents(b []byte) ([]wsEvent, error) {
	var out []wsEvent
	for len(b) > 0 {
		i := bytes.Index(b, []byte("\r\n"))
		if i < 0 {
			return out, fmt.Errorf("%w: event line without CRLF", errWSEvents)
		}
		typ, hexLen, sized := bytes.Cut(b[:i], []byte(" "))
		b = b[i+2:]
		ev := wsEvent{typ: string(typ)}
		if sized {
			n, err := strconv.ParseUint(string(hexLen), 16, 31)
			if err != nil || len(hexLen) == 0 || hexLen[0] == '+' {
				return out, fmt.Errorf("%w: length %q", errWSEvents, hexLen)
			}
			if uint64(len(b)) < n+2 || b[n] != '\r' || b[n+1] != '\n' {
				return out, fmt.Errorf("%w: %s content of %d bytes not followed by CRLF", errWSEvents, typ, n)
			}
			ev.content, b = b[:n:n], b[n+2:]
		}
		out = append(out, ev)
	}
	return out, nil
}

// appendWSEvent encodes one event as Pushpin does (no length part when the
// content is empty).
func appendWSEvent(b []byte, typ string, content []byte) []byte {
	b = append(b, typ...)
	if len(content) > 0 {
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(len(content)), 16)
		b = append(b, "\r\n"...)
		b = append(b, content...)
	}
	return append(b, "\r\n"...)
}

// wsBackendStats count what the backend saw, for the report.
type wsBackendStats struct {
	opens, closes, disconnects, messages atomic.Int64
	refused                              atomic.Int64 // requests answered 400
	kinds                                map[string]*wsKind
}

// The scenarios' session kinds: the path under /ws/ of their sessions, so
// that the backend counts each scenario's sessions apart.
const (
	wsKindOpen   = "open"
	wsKindIdle   = "idle"
	wsKindFanout = "fanout"
	wsKindRate   = "rate"
	wsKindOther  = "other"
)

// wsKind counts one kind's sessions opened and ended (CLOSE or DISCONNECT).
type wsKind struct {
	opens, ended atomic.Int64
	writtenOff   int64 // given up on (wsSettle; the coordinator's only)
}

func newWSBackendStats() *wsBackendStats {
	s := &wsBackendStats{kinds: map[string]*wsKind{}}
	for _, k := range []string{wsKindOpen, wsKindIdle, wsKindFanout, wsKindRate, wsKindOther} {
		s.kinds[k] = &wsKind{}
	}
	return s
}

// kind is the counters of a request path's kind (nil without kinds).
func (s *wsBackendStats) kind(path string) *wsKind {
	if k, ok := s.kinds[strings.TrimPrefix(path, wsPathPrefix)]; ok {
		return k
	}
	return s.kinds[wsKindOther]
}

// pending is how many sessions of kind ("" for all) the backend saw open
// and not end, less those written off.
func (s *wsBackendStats) pending(kind string) int64 {
	var n int64
	for name, k := range s.kinds {
		if kind == "" || kind == name {
			n += max(k.opens.Load()-k.ended.Load()-k.writtenOff, 0)
		}
	}
	return n
}

// handleWSEvents is the WebSocket-over-HTTP endpoint.
func (s *wsBackendStats) handleWSEvents(w http.ResponseWriter, r *http.Request) {
	w = &wsStatusCounter{ResponseWriter: w, refused: &s.refused}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != wsEventsType {
		http.Error(w, "not a WebSocket-over-HTTP request", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, wsEventsMax+1))
	if err != nil || len(body) > wsEventsMax {
		http.Error(w, "request body unreadable or too large", http.StatusBadRequest)
		return
	}
	evs, err := parseWSEvents(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h := w.Header()
	kind := s.kind(r.URL.Path)
	var out []byte
events:
	for i, ev := range evs {
		switch ev.typ {
		case "OPEN":
			ch := r.URL.Query().Get("ch")
			if i != 0 || ch == "" {
				http.Error(w, "OPEN must come first, and the URL needs ?ch=", http.StatusBadRequest)
				return
			}
			s.opens.Add(1)
			if kind != nil {
				kind.opens.Add(1)
			}
			h.Set("Sec-WebSocket-Extensions", `grip; message-prefix=""`)
			out = appendWSEvent(out, "OPEN", nil)
			out = appendWSEvent(out, "TEXT", []byte(`c:{"type":"subscribe","channel":`+strconv.Quote(ch)+`}`))
			out = appendWSEvent(out, "TEXT", []byte(wsWelcome))
		case "TEXT", "BINARY":
			s.messages.Add(1)
			out = appendWSEvent(out, ev.typ, ev.content)
		case "CLOSE":
			s.closes.Add(1)
			if kind != nil {
				kind.ended.Add(1)
			}
			out = appendWSEvent(out, "CLOSE", ev.content)
			break events // nothing follows a close
		case "DISCONNECT":
			s.disconnects.Add(1)
			if kind != nil {
				kind.ended.Add(1)
			}
		}
	}
	h.Set("Content-Type", wsEventsType)
	h.Set("Content-Length", strconv.Itoa(len(out)))
	_, _ = w.Write(out) // an error: the proxy went away, and its client sees it
}

// wsStatusCounter counts the 400s, which the report shows: the targets'
// requests must all be good ones.
type wsStatusCounter struct {
	http.ResponseWriter
	refused *atomic.Int64
}

func (w *wsStatusCounter) WriteHeader(code int) {
	if code == http.StatusBadRequest {
		w.refused.Add(1)
	}
	w.ResponseWriter.WriteHeader(code)
}
