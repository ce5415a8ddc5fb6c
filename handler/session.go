package handler

import (
	"strings"
	"time"

	"github.com/pushpin-go/pushpin/proto/grip"
	"github.com/pushpin-go/pushpin/proto/handoff"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// chunk is response body waiting for credits.
type chunk struct {
	body    []byte
	cost    int32 // charged against the queue bound (enqueue); 0 if not
	final   bool  // the response ends after this body
	partial bool  // the front of body has been sent
}

// sessionKey identifies a session: ids are unique per connection manager.
// A struct rather than one joined string, so a lookup allocates nothing.
type sessionKey struct{ sender, id string }

// session is one held HTTP request. All fields are owned by the engine
// goroutine.
type session struct {
	key      sessionKey
	sender   string // connection manager instance id (PUB receiver)
	id       string
	inSeq    int64 // next seq expected from the connection manager
	outSeq   int64 // next seq to send
	credits  int64 // body bytes the client can take now
	multi    bool
	mdata    bool         // the connection manager takes list-form ids on data packets
	batch    *senderBatch // its connection manager's shared packet (engine scratch), once used
	userData []byte

	hold     grip.HoldMode
	channels []string
	orig     grip.Response // response-hold: the backend's response (client view)
	ka       *grip.KeepAlive

	pending []chunk // stream body waiting for credits, in order
	queued  int64   // sum of pending's costs (the queue bound's measure)
	done    bool    // final packet queued or sent; no more publishes

	lastIn, lastOut time.Time
	lastData        time.Time // last body bytes sent (keep-alive "idle" mode)
	lastCredit      time.Time // last credits from the client side (queue bound)
	lastKA          time.Time // last Grip-Keep-Alive sent ("interval" mode)
	timer           *time.Timer

	// Place in the engine's maintenance wheel: wheelAt is the bucket index
	// + 1 (0: in no bucket, wheelTaken: being examined by a tick),
	// wheelPos the index in that bucket.
	wheelAt, wheelPos int
}

func newSession(s handoff.Session, now time.Time) *session {
	return &session{
		key: sessionKey{s.Sender, s.ID}, sender: s.Sender, id: s.ID,
		inSeq: s.InSeq, outSeq: s.OutSeq, credits: s.OutCredits, multi: s.Multi, mdata: s.MultiData,
		userData: s.UserData, lastIn: now, lastOut: now, lastData: now, lastKA: now, lastCredit: now,
	}
}

// packet returns a packet addressed to this session with the next seq.
func (s *session) packet(from string) zhttp.Packet {
	p := zhttp.Packet{From: from, ID: s.id, Seq: s.outSeq, HasSeq: true, UserData: s.userData}
	s.outSeq++
	s.lastOut = time.Now()
	return p
}

func (s *session) stopTimers() {
	if s.timer != nil {
		s.timer.Stop()
	}
}

// clientHeaders drops the framing headers the connection manager computes
// itself, so a held response is streamed (or sized) correctly.
func clientHeaders(h zhttp.Headers) zhttp.Headers {
	out := make(zhttp.Headers, 0, len(h))
	for _, x := range h {
		switch {
		case strings.EqualFold(x.Name, "Content-Length"), strings.EqualFold(x.Name, "Transfer-Encoding"), strings.EqualFold(x.Name, "Connection"):
			continue
		}
		out = append(out, x)
	}
	return out
}
