package proxy

import (
	"net/url"
	"strings"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// Texts of Pushpin's built-in test backend (scripts/capture/OBSERVED.md §4.1).
const (
	testHello    = "Hello from the Pushpin test handler!\n"
	testNotFound = "no such test resource\n"
	testStream   = "[stream opened]\n"
	testResponse = "nothing for now\n"
)

// testBackend produces the response of the `test` route target for a path
// (path_beg already stripped) and query. Holds are GRIP responses, so they
// take the same way to the handler as a real backend's.
func testBackend(path, query string) (code int, reason string, h zhttp.Headers, body string) {
	text := zhttp.Header{Name: "Content-Type", Value: "text/plain"}
	var hold string
	switch path {
	case "/", "":
		return 200, "OK", zhttp.Headers{text}, testHello
	case "/stream":
		hold, body = "stream", testStream
	case "/response":
		hold, body = "response", testResponse
	default:
		return 404, "Not Found", zhttp.Headers{text}, testNotFound
	}
	q, _ := url.ParseQuery(query)
	chans := q["channel"]
	if len(chans) == 0 {
		chans = []string{"test"}
	}
	return 200, "OK", zhttp.Headers{text,
		{Name: "Grip-Hold", Value: hold},
		{Name: "Grip-Channel", Value: strings.Join(chans, ", ")},
	}, body
}

// testRespond feeds the test backend's response into the normal response
// path once the request body is complete.
func (s *session) testRespond() {
	path, query := pathOf(s.rest), ""
	if i := strings.IndexByte(s.rest, '?'); i >= 0 {
		query = s.rest[i+1:]
	}
	if pb := s.route.PathBeg; pb != "" && !s.route.HasReplaceBeg && s.route.PathRem == 0 {
		path = "/" + strings.TrimPrefix(strings.TrimPrefix(path, pb), "/")
	}
	code, reason, h, body := testBackend(path, query)
	s.onBackendData(&zhttp.Packet{Code: int64(code), HasCode: true, Reason: reason, Headers: h, Body: []byte(body)})
}
