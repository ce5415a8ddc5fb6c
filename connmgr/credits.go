package connmgr

import (
	"sync/atomic"
	"time"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// creditBatch gathers the credits a worker's job returned (one message
// written to many clients gives each session the same credits) and sends
// them in list form, up to maxBatch ids a packet, to servers that accept
// list-form ids. One per worker; reused.
//
// Why holding several session locks is safe here: a session's packets all
// go through one worker, so while that worker flushes no packet of these
// sessions runs anywhere (a packet it queued on a busy connection would
// have queued the packet that earned the credit too), and `to`/handoff
// cannot change under us; only closed can. Workers lock disjoint sets of
// sessions, runners hold one session lock at a time, and the sweeper only
// TryLocks while it holds others, so no cycle can form.
type creditBatch struct {
	s      *Server
	gen    uint64 // names this batch until its next flush (batchGen)
	list   []pendingCredit
	groups map[creditKey]int // index into lists
	lists  [][]*session
	ids    []zhttp.IDSeq
	locked []*session
}

type pendingCredit struct {
	ss *session
	to string // ss.to when added (by the runner, which owns it)
	n  int64
}

type creditKey struct {
	to string
	n  int64
}

// batchGen numbers the creditBatch generations of every worker, so an
// exchange can tell whether it already has an entry in the batch that
// runs it (a worker holds credits over several packets: see worker).
var batchGen atomic.Uint64

// add is called by the session's runner. A session already in the batch
// has its entry grown: one entry per session, so sendList never lists (and
// locks) a session twice.
func (b *creditBatch) add(x *exchange, n int64) {
	if b.gen == 0 {
		b.gen = batchGen.Add(1)
	}
	if x.creditGen == b.gen {
		b.list[x.creditIdx].n += n
		return
	}
	x.creditGen, x.creditIdx = b.gen, int32(len(b.list))
	b.list = append(b.list, pendingCredit{ss: x.ss, to: x.ss.to, n: n})
}

func (b *creditBatch) flush() {
	b.gen = 0
	switch len(b.list) {
	case 0:
		return
	case 1:
		x := b.list[0]
		b.s.send(x.ss, &zhttp.Packet{Type: zhttp.Credit, Credits: x.n, HasCredits: true})
		b.list[0] = pendingCredit{}
		b.list = b.list[:0]
		return
	}
	if b.groups == nil {
		b.groups = map[creditKey]int{}
	}
	for _, x := range b.list {
		k := creditKey{x.to, x.n}
		i, ok := b.groups[k]
		if !ok {
			i = len(b.groups)
			b.groups[k] = i
			if i == len(b.lists) {
				b.lists = append(b.lists, nil)
			}
		}
		b.lists[i] = append(b.lists[i], x.ss)
	}
	for k, i := range b.groups {
		list := b.lists[i]
		for len(list) > 0 {
			n := min(len(list), maxBatch)
			b.sendList(k.to, k.n, list[:n])
			list = list[n:]
		}
		clear(b.lists[i])
		b.lists[i] = b.lists[i][:0]
	}
	clear(b.groups)
	clear(b.list)
	b.list = b.list[:0]
}

// sendList sends one list-form credit packet; the sessions stay locked
// until it is queued, so no later packet of theirs can overtake it.
func (b *creditBatch) sendList(to string, n int64, list []*session) {
	s := b.s
	ids, locked := b.ids[:0], b.locked[:0]
	now := time.Now().UnixNano()
	for _, ss := range list {
		ss.mu.Lock()
		switch {
		case ss.closed:
		case ss.to != to || ss.handoff: // cannot happen (see creditBatch); stay correct anyway
			if !ss.handoff {
				s.stampLocked(ss, &zhttp.Packet{Type: zhttp.Credit, Credits: n, HasCredits: true})
			}
		default:
			ids = append(ids, zhttp.IDSeq{ID: ss.id, Seq: ss.outSeq})
			ss.outSeq++
			ss.sl.lastOut.Store(now)
			locked = append(locked, ss)
			continue
		}
		ss.mu.Unlock()
	}
	if len(ids) > 0 {
		p := &zhttp.Packet{From: s.cfg.ID, IDs: ids, Type: zhttp.Credit, Credits: n, HasCredits: true, Ext: ourExt}
		s.routePacket(to, p)
	}
	for _, ss := range locked {
		ss.mu.Unlock()
	}
	clear(locked)
	b.ids, b.locked = ids[:0], locked[:0]
}
