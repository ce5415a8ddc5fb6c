package connmgr

import (
	"strings"
	"time"

	"github.com/pushpin-go/pushpin/connmgr/internal/http1"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// job is one server packet for the sessions of one worker: the packet's
// own id, or this worker's part of its list-form id.
type job struct {
	p     *zhttp.Packet
	ids   []zhttp.IDSeq // nil: p.ID (p.Seq)
	chunk []byte        // p's body framed as one chunk (see chunkWire), or nil
	ws    *wsWire       // p as a WebSocket frame for list-form data packets (built lazily)
	now   int64
}

// workerOf maps a session id to its worker. Every packet of a session
// goes through the same worker, in order. Runs of 8 neighbouring slots
// share a worker, so two workers seldom write the same cache line of the
// slot table (lastIn). An id that does not parse names no session: any
// worker will find that out.
func (s *Server) workerOf(id string) int {
	i, _, _ := parseSessionID(s.cfg.SessionPrefix, id)
	return int(i>>3) % len(s.workers)
}

// dispatch hands a server packet ("<id> T…") to the workers of its
// sessions. It runs on the SUB goroutine. A data packet's chunked framing
// is computed here, once for every session it goes to; the packet itself
// is shared, never copied.
func (s *Server) dispatch(msg [][]byte) {
	_, m, err := zhttp.SplitPub(msg[0])
	if err != nil {
		s.log.Warn().Err(err).Msg("bad frame from server")
		return
	}
	p, err := zhttp.ParseMessage(m)
	if err != nil {
		s.log.Warn().Err(err).Msg("bad packet from server")
		return
	}
	p.From = s.intern(p.From)
	j := job{p: p, now: time.Now().UnixNano()}
	if p.Type == zhttp.Data && len(p.Body) > 0 && len(p.IDs) > 1 {
		// Framed once for all the sessions; a packet for one session is
		// written from its body as it is (no copy).
		j.chunk = chunkWire(p)
	}
	if p.Type == zhttp.Data && len(p.IDs) > 1 {
		j.ws = &wsWire{}
	}
	nw := len(s.workers)
	if len(p.IDs) == 0 {
		w := s.workerOf(p.ID)
		if s.busy[w].Load() == 0 {
			// Nothing of this worker's is queued or running, so nothing
			// for this session is: run it here and save the hand-off (a
			// goroutine wake-up per packet). Credits go out unbatched.
			s.deliver(p.ID, p.Seq, p.HasSeq, &j, nil)
			return
		}
		s.toWorker(w, j)
		return
	}
	if nw == 1 {
		j.ids = p.IDs
		s.toWorker(0, j)
		return
	}
	// Split the list by worker into one array, each worker's part
	// contiguous. Each id's worker is worked out once (s.split, reused).
	var counts [maxWorkers + 1]int
	ws := s.split[:0]
	for i := range p.IDs {
		w := s.workerOf(p.IDs[i].ID)
		ws = append(ws, uint8(w))
		counts[w+1]++
	}
	s.split = ws
	for w := 1; w <= nw; w++ {
		counts[w] += counts[w-1]
	}
	parts := make([]zhttp.IDSeq, len(p.IDs))
	next := counts
	for i, x := range p.IDs {
		w := ws[i]
		parts[next[w]] = x
		next[w]++
	}
	for w := 0; w < nw; w++ {
		if counts[w+1] > counts[w] {
			j.ids = parts[counts[w]:counts[w+1]]
			s.toWorker(w, j)
		}
	}
}

// intern returns the one copy of server identity from kept for all the
// sessions it serves. Their ss.to is then that copy, so comparing a
// packet's from with it (every delivery) finds the same pointer and reads
// no bytes of a string scattered in memory, and no session's ss.to keeps
// the packet it came in alive. Only dispatch (the SUB goroutine) calls it.
func (s *Server) intern(from string) string {
	if v, ok := s.servers[from]; ok {
		return v
	}
	if len(s.servers) >= 1024 {
		clear(s.servers) // servers come and go (Pushpin's ids carry a pid)
	}
	v := strings.Clone(from)
	s.servers[v] = v
	return v
}

func (s *Server) toWorker(w int, j job) {
	s.busy[w].Add(1)
	s.workers[w] <- j
}

// chunkWire is what a streaming (chunked) response writes for data packet
// p: the size line, the body, CRLF, and the last chunk if p ends the
// body. One contiguous buffer, so each session's write is one plain
// write of shared bytes.
func chunkWire(p *zhttp.Packet) []byte {
	b := make([]byte, 0, 16+len(p.Body)+2+len(http1.LastChunk))
	b = http1.AppendChunkHeader(b, len(p.Body))
	b = append(b, p.Body...)
	b = append(b, http1.CRLF...)
	if !p.More {
		b = append(b, http1.LastChunk...)
	}
	return b
}

// maxWorkers bounds the delivery workers (one per CPU, up to this).
const maxWorkers = 16

// maxDeferredCredits bounds the credits a worker holds back while more
// data packets are queued for it.
const maxDeferredCredits = 8192

// worker applies server packets to their sessions' connections. A
// connection that is not running runs the packet right here (writing to
// the client without blocking); one that is gets it queued. Credits
// returned by the connections it ran go out batched once no data packet
// is waiting for the worker (or maxDeferredCredits are held): during a
// fan-out the credits of every packet would otherwise go back, and be
// parsed and applied by the server, while the writes to the other clients
// still wait for the CPU. A server's credit window is the client's buffer
// size (8 KB), far more than one burst of messages uses. Any other packet
// first flushes them, so credits held back never meet a handoff or a
// cancel of their session (see creditBatch). busy[w] drops to 0 only
// after a flush, so dispatch's direct delivery never overtakes them.
func (s *Server) worker(w int) {
	rt := &runCtx{batch: &creditBatch{s: s}}
	ch := s.workers[w]
	for j := range ch {
		if j.p.Type != zhttp.Data {
			rt.batch.flush()
		}
		if j.ids == nil {
			s.deliver(j.p.ID, j.p.Seq, j.p.HasSeq, &j, rt)
		} else {
			for _, x := range j.ids {
				s.deliver(x.ID, x.Seq, true, &j, rt)
			}
		}
		if len(ch) == 0 || len(rt.batch.list) >= maxDeferredCredits {
			rt.batch.flush()
		}
		s.busy[w].Add(-1)
	}
}

func (s *Server) deliver(id string, seq int64, hasSeq bool, j *job, rt *runCtx) {
	ss := s.lookup(id)
	if ss == nil {
		if j.p.Type != zhttp.Cancel && j.p.Type != zhttp.Error {
			s.log.Debug().Str("id", id).Str("type", string(j.p.Type)).Msg("packet for unknown session")
		}
		return
	}
	ss.sl.lastIn.Store(j.now)
	if e := s.log.Trace(); e.Enabled() {
		e.Str("id", id).Int64("seq", seq).Str("type", string(j.p.Type)).Msg("packet from server")
	}
	ss.c.post(event{kind: evPacket, ss: ss, d: delivery{p: j.p, seq: seq, hasSeq: hasSeq, chunk: j.chunk, ws: j.ws}}, rt)
}
