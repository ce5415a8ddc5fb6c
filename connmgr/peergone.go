package connmgr

import (
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// packetDropped is the router's onDrop: a packet to server to was dropped
// because the server is unreachable (gone, or never connected). Each
// session it was for has lost a packet, so the server would see a gap in
// its seqs; the server is most likely gone anyway. End the sessions now
// rather than when they expire (60 s of silence), so their clients can
// retry against whoever serves now.
func (s *Server) packetDropped(to string, msg []byte) {
	p, err := zhttp.ParseMessage(msg)
	if err != nil || p.Type == zhttp.Cancel {
		return // a cancel's session is ending already
	}
	// The event names the server in a packet of its own (From only), so
	// the event, copied on every delivery, needs no field for this rare one.
	gone := &zhttp.Packet{From: to}
	end := func(id string) {
		if ss := s.lookup(id); ss != nil {
			ss.c.post(event{kind: evPeerGone, ss: ss, d: delivery{p: gone}}, nil)
		}
	}
	if len(p.IDs) == 0 {
		end(p.ID)
		return
	}
	for _, x := range p.IDs {
		end(x.ID)
	}
}

// peerGone ends the exchange after a packet of it to server to was
// dropped, unless the session has moved to another server since. As when
// the server cancels: a 502 if the response has not started, else the
// connection is closed (a stream cut short must not look complete).
func (x *exchange) peerGone(to string) outcome {
	if x.ss.to != to {
		return goOn
	}
	x.s.log.Debug().Str("id", x.ss.id).Str("to", to).Msg("server unreachable; ending session")
	if !x.started {
		x.c.refuse(x.minor, 502, "Bad Gateway", "Bad Gateway.\n")
		return linger
	}
	return abort
}
