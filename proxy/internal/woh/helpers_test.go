package woh

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pushpin-go/pushpin/proto/wsevents"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

var t0 = time.Unix(1_700_000_000, 0)

// wohOK is the head of a good WebSocket-over-HTTP response.
func wohOK(extra ...string) zhttp.Headers {
	h := zhttp.Headers{{Name: "Content-Type", Value: wsevents.ContentType}}
	for i := 0; i+1 < len(extra); i += 2 {
		h = append(h, zhttp.Header{Name: extra[i], Value: extra[i+1]})
	}
	return h
}

// respond answers the request in flight in one go.
func respond(c *Conn, now time.Time, code int, h zhttp.Headers, body string) []Action {
	out := c.ResponseHead(code, "X", h)
	return append(out, c.ResponseBody(now, []byte(body), true)...)
}

func of[T Action](acts []Action) []T {
	var out []T
	for _, a := range acts {
		if x, ok := a.(T); ok {
			out = append(out, x)
		}
	}
	return out
}

func one[T Action](t *testing.T, acts []Action) T {
	t.Helper()
	xs := of[T](acts)
	if len(xs) != 1 {
		var zero T
		t.Fatalf("want one %T in %s", zero, show(acts))
	}
	return xs[0]
}

func none[T Action](t *testing.T, acts []Action) {
	t.Helper()
	if xs := of[T](acts); len(xs) != 0 {
		var zero T
		t.Fatalf("want no %T in %s", zero, show(acts))
	}
}

// reqBody returns the body of the one SendRequest in acts.
func reqBody(t *testing.T, acts []Action) string {
	t.Helper()
	return string(one[SendRequest](t, acts).Body)
}

func show(acts []Action) string {
	var b strings.Builder
	b.WriteString("[")
	for i, a := range acts {
		if i > 0 {
			b.WriteString(", ")
		}
		switch x := a.(type) {
		case SendRequest:
			fmt.Fprintf(&b, "SendRequest{%q #%d}", x.Body, x.Attempt)
		case Deliver:
			fmt.Fprintf(&b, "Deliver{%v %q}", x.Type, x.Data)
		case Control:
			fmt.Fprintf(&b, "Control{%s}", x.JSON)
		default:
			fmt.Fprintf(&b, "%T%+v", a, a)
		}
	}
	b.WriteString("]")
	return b.String()
}

// opened returns a Conn whose OPEN was accepted with the given extra
// response headers, and the acceptance's actions.
func opened(t *testing.T, cfg Config, extra ...string) (*Conn, []Action) {
	t.Helper()
	if cfg.Jitter == nil {
		cfg.Jitter = func() time.Duration { return 0 }
	}
	c, acts := New(cfg)
	if b := reqBody(t, acts); b != "OPEN\r\n" {
		t.Fatalf("first request %q", b)
	}
	acts = respond(c, t0, 200, wohOK(extra...), "OPEN\r\n")
	one[Accept](t, acts)
	return c, acts
}
