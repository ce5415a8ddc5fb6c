package connmgr

import (
	"sync"
	"time"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// ourExt is the ext of every packet we send: we accept list-form ids on
// any packet (multi), data packets included (multi-data, our extension:
// one body for many sessions).
var ourExt = zhttp.Ext{Multi: true, MultiData: true}

// session is one request carried as a zhttp client session. Its
// connection's runner owns it; workers only read id and c and store
// lastIn; the sweeper and the credit batches read the fields under mu.
type session struct {
	id string
	n  uint64 // the id's session number: the id is sessionID(prefix, c.slotIdx, n)
	c  *conn
	// sl is c's slot, which keeps the session's lastIn and lastOut (unix
	// ns of the last packet from and to the server) for the sweeper.
	sl *slot

	mu sync.Mutex
	// Guarded by mu; written only by the runner, which may read them
	// without it.
	to      string // server identity in the most recent `from`
	outSeq  int64
	multi   bool // the server accepts list-form ids
	handoff bool // handoff-proceed sent; wait for the new owner
	closed  bool
}

func (s *Server) newSession(c *conn) *session {
	n := s.idSeq.Add(1) - 1
	ss := &session{id: sessionID(s.cfg.SessionPrefix, c.slotIdx, n), n: n, c: c, sl: c.sl, outSeq: 1}
	now := time.Now().UnixNano()
	ss.sl.lastIn.Store(now)
	ss.sl.lastOut.Store(now)
	return ss
}

// stampLocked fills the common fields, takes the next seq and queues p
// for the ROUTER. ss.mu is held, so seqs reach the socket in order.
func (s *Server) stampLocked(ss *session, p *zhttp.Packet) {
	p.From, p.ID, p.IDs, p.Seq, p.HasSeq = s.cfg.ID, ss.id, nil, ss.outSeq, true
	p.Ext = ourExt
	ss.outSeq++
	ss.sl.lastOut.Store(time.Now().UnixNano())
	s.routePacket(ss.to, p)
}

// routePacket encodes p into a pooled buffer and sends it on the ROUTER
// (which copies it only if it must queue it).
func (s *Server) routePacket(to string, p *zhttp.Packet) {
	bp := s.enc.Get().(*[]byte)
	msg := p.AppendMessage((*bp)[:0])
	s.router.send(to, msg)
	if cap(msg) <= maxPooledEnc {
		*bp = msg[:0]
		s.enc.Put(bp)
	}
}

// maxPooledEnc bounds the encoding buffers kept for reuse: a rare big
// packet (a long list of ids) must not stay pinned.
const maxPooledEnc = 64 << 10

// send queues p to the session's server; false when there is no server to
// send to yet, a handoff is in progress, or the session ended.
func (s *Server) send(ss *session, p *zhttp.Packet) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed || ss.to == "" || ss.handoff {
		return false
	}
	s.stampLocked(ss, p)
	return true
}

// proceed answers handoff-start and holds every later packet until the new
// owner speaks.
func (s *Server) proceed(ss *session) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed || ss.to == "" {
		return
	}
	s.stampLocked(ss, &zhttp.Packet{Type: zhttp.HandoffProceed})
	ss.handoff = true
}

// retarget points the session at the sender of the packet just received.
func (ss *session) retarget(from string, multi bool) {
	if from == "" || from == ss.to && !ss.handoff && (ss.multi || !multi) {
		return
	}
	ss.mu.Lock()
	ss.to, ss.handoff = from, false
	ss.multi = ss.multi || multi
	ss.mu.Unlock()
}

func (s *Server) endSession(ss *session) {
	ss.mu.Lock()
	ss.closed = true
	ss.mu.Unlock()
	s.unregister(ss)
}
