package zurl

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// The same zws exchanges against Pushpin's zurl 1.11 and ours give the
// same packets in the same order: types, codes, bodies, content types and
// more flags of everything but credits, whose sum must match (zurl sends
// one credit packet per frame written, we one per batch). Where we differ
// on purpose (ping payloads, the rejection's reason and headers)
// BEHAVIOUR.md says so; those fields are left out here.
func TestWSMatchesRealZurl(t *testing.T) {
	t.Parallel()
	be := wsBackend(t, &websocket.Upgrader{Subprotocols: []string{"chat"}}, func(c *websocket.Conn, req *http.Request) {
		if req.URL.Path == "/vanish" {
			c.UnderlyingConn().Close()
			return
		}
		for {
			mt, m, err := c.ReadMessage()
			if err != nil {
				return
			}
			if string(m) == "close-me" {
				_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "bye"))
				continue
			}
			_ = c.WriteMessage(mt, m)
		}
	})
	rej := httptestServer(t, func(w http.ResponseWriter, req *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte("go away"))
	})
	refused := closedAddr(t)
	script := func(r *requester) []string {
		var log []string
		credits := int64(0)
		// collect logs a session's packets until stop says so or it is
		// quiet for 300 ms (the end of an exchange is no more packets).
		collect := func(id string, stop func(*zhttp.Packet) bool) {
			for {
				p := r.recvFor(id, 300*time.Millisecond)
				if p == nil {
					return
				}
				if p.Type == zhttp.Credit {
					credits += p.Credits
					continue
				}
				// Seqs differ with the credit packets between; order and
				// what comes first are compared.
				_, line, _ := strings.Cut(fmtP(p), " ")
				if p.Seq == 0 {
					line = "first " + line
				}
				if p.Code == 101 {
					// zurl grants buffer_size, we one byte more (wsWindow).
					line = strings.Replace(line, " credits=200001", " credits=200000", 1)
					var names []string
					for _, h := range p.Headers {
						names = append(names, h.Name+":"+map[bool]string{true: "…", false: h.Value}[h.Name == "Sec-WebSocket-Accept"])
					}
					line += " headers=" + strings.Join(names, ",") + fmt.Sprintf(" multi=%v", p.Ext.Multi)
				}
				if p.Condition == "rejected" {
					line = fmt.Sprintf("seq=%d rejected code=%d body=%q", p.Seq, p.Code, p.Body) // zurl sends no reason, no headers
				}
				log = append(log, id+" "+line)
				if stop != nil && stop(p) {
					return
				}
			}
		}
		is101 := func(p *zhttp.Packet) bool { return p.Code == 101 }
		r.wsOpen(&zhttp.Packet{ID: "a", URI: wsURI(be, "/"), Headers: zhttp.Headers{{Name: "Sec-WebSocket-Protocol", Value: "chat"}}})
		r.wsOpen(&zhttp.Packet{ID: "b", URI: wsURI(be, "/")})
		for _, m := range []*zhttp.Packet{{Body: []byte("hello")}, {Body: []byte{1, 2}, ContentType: "binary"},
			{Body: []byte("fr"), More: true}, {Body: []byte("ag")}} {
			m.ID = "a"
			r.later(m)
		}
		collect("a", func(p *zhttp.Packet) bool { return string(p.Body) == "frag" })
		// Only after the echoes: zurl relays a close frame read together
		// with data frames ahead of them (BEHAVIOUR.md).
		r.later(&zhttp.Packet{ID: "a", Body: []byte("close-me")})
		collect("a", func(p *zhttp.Packet) bool { return p.Type == zhttp.Close })
		r.later(&zhttp.Packet{ID: "a", Type: zhttp.Close, Code: 4001, HasCode: true, Body: []byte("bye")})
		collect("a", nil)
		r.later(&zhttp.Packet{ID: "b", Type: zhttp.Close, Code: 4002, HasCode: true, Body: []byte("client bye")})
		collect("b", nil)
		// The 101 is logged from "v" (wsOpen took those of a and b).
		for _, s := range []struct{ id, uri string }{{"v", wsURI(be, "/vanish")}, {"rj", "ws://" + rej + "/"}, {"rf", "ws://" + refused + "/"}} {
			q := &zhttp.Packet{From: "proxy", ID: s.id, HasSeq: true, URI: s.uri, Credits: 200000, HasCredits: true, IgnorePolicies: true,
				Ext: zhttp.Ext{Multi: true}}
			r.seq[s.id] = 1
			if err := r.push.Send(q.AppendMessage(nil)); err != nil {
				t.Fatal(err)
			}
			collect(s.id, func(p *zhttp.Packet) bool { return is101(p) && s.id != "v" })
		}
		return append(log, fmt.Sprintf("credits=%d", credits))
	}
	real := script(startRealZurl(t))
	ours := script(startZurl(t, nil))
	if !reflect.DeepEqual(real, ours) {
		t.Fatalf("zurl 1.11:\n  %s\nours:\n  %s", strings.Join(real, "\n  "), strings.Join(ours, "\n  "))
	}
	t.Logf("both:\n  %s", strings.Join(ours, "\n  "))
}
