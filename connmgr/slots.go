package connmgr

import (
	"strconv"
	"sync"
	"sync/atomic"
)

// The slot table replaces the id → session and serial → connection maps.
// Every open connection holds one slot; its epoll data and its sessions'
// ids name the slot, so finding a connection for an epoll event, or the
// session of a packet's id, is an index and a check, not a hash of the id,
// a map probe and a string compare, each a cache miss once 100,000
// connections no longer fit in the caches. The timestamps the sweeper
// reads sit in the slots too, so its once-a-second pass reads one dense
// array instead of chasing every session and connection pointer.

const (
	slotChunkBits = 10
	slotChunk     = 1 << slotChunkBits // slots per chunk, allocated as needed
	slotChunks    = 1 << 12            // chunks: up to 4M connections
)

// slot is one connection's place. c and ss change only on the connection's
// runner (open, a new request's session, close); anyone may read them.
type slot struct {
	c  atomic.Pointer[conn]
	ss atomic.Pointer[session] // the connection's current session, if any
	// Unix ns. lastIn/lastOut are the current session's last packet from
	// and to the server; deadline is when client inactivity ends the
	// connection (0: none).
	lastIn, lastOut, deadline atomic.Int64
}

type slotTable struct {
	dir  [slotChunks]atomic.Pointer[[slotChunk]slot]
	mu   sync.Mutex
	free []uint32 // freed slots, reused last-freed first to keep the table dense
	used uint32   // slots ever handed out: the sweep's bound
	hw   atomic.Uint32
}

// at is slot i, or nil if i was never handed out.
func (t *slotTable) at(i uint32) *slot {
	if i>>slotChunkBits >= slotChunks {
		return nil
	}
	ch := t.dir[i>>slotChunkBits].Load()
	if ch == nil {
		return nil
	}
	return &ch[i&(slotChunk-1)]
}

// alloc takes a slot for c; false when the table is full.
func (t *slotTable) alloc(c *conn) (uint32, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var i uint32
	if n := len(t.free); n > 0 {
		i, t.free = t.free[n-1], t.free[:n-1]
	} else {
		if t.used == slotChunk*slotChunks {
			return 0, false
		}
		i = t.used
		if i&(slotChunk-1) == 0 {
			t.dir[i>>slotChunkBits].Store(new([slotChunk]slot))
		}
		t.used++
		t.hw.Store(t.used)
	}
	sl := t.at(i)
	sl.ss.Store(nil)
	sl.lastIn.Store(0)
	sl.lastOut.Store(0)
	sl.deadline.Store(0)
	sl.c.Store(c)
	return i, true
}

// release gives slot i back once c, its connection, is closed.
func (t *slotTable) release(i uint32, c *conn) {
	sl := t.at(i)
	if sl == nil || !sl.c.CompareAndSwap(c, nil) {
		return
	}
	sl.ss.Store(nil)
	t.mu.Lock()
	t.free = append(t.free, i)
	t.mu.Unlock()
}

// each calls fn for every slot that holds a connection, in index order.
func (t *slotTable) each(fn func(i uint32, sl *slot, c *conn)) {
	n := t.hw.Load()
	for base := uint32(0); base < n; base += slotChunk {
		ch := t.dir[base>>slotChunkBits].Load()
		for j := range min(slotChunk, n-base) {
			sl := &ch[j]
			if c := sl.c.Load(); c != nil {
				fn(base+uint32(j), sl, c)
			}
		}
	}
}

// sessionID is the id of session number n on the connection in slot i:
// "<prefix>-<slot hex>-<n hex>". n is unique over the process's life, so
// ids are never reused.
func sessionID(prefix string, i uint32, n uint64) string {
	b := make([]byte, 0, len(prefix)+1+8+1+16)
	b = append(b, prefix...)
	b = append(b, '-')
	b = strconv.AppendUint(b, uint64(i), 16)
	b = append(b, '-')
	b = strconv.AppendUint(b, n, 16)
	return string(b)
}

// parseSessionID is sessionID's inverse. Only the canonical form parses
// (lowercase hex, no leading zeros), so (slot, n) names exactly one id and
// matching n in the slot's session proves the whole id matches.
func parseSessionID(prefix, id string) (i uint32, n uint64, ok bool) {
	if len(id) < len(prefix)+4 || id[:len(prefix)] != prefix || id[len(prefix)] != '-' {
		return 0, 0, false
	}
	rest := id[len(prefix)+1:]
	slotHex, nHex, found := cut(rest)
	if !found {
		return 0, 0, false
	}
	s, ok1 := parseHex(slotHex, 8)
	n, ok2 := parseHex(nHex, 16)
	return uint32(s), n, ok1 && ok2
}

func cut(s string) (string, string, bool) {
	for k := 0; k < len(s); k++ {
		if s[k] == '-' {
			return s[:k], s[k+1:], true
		}
	}
	return "", "", false
}

// parseHex parses canonical lowercase hex of at most maxDigits digits.
func parseHex(s string, maxDigits int) (uint64, bool) {
	if len(s) == 0 || len(s) > maxDigits || len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	var v uint64
	for k := 0; k < len(s); k++ {
		c := s[k]
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}
