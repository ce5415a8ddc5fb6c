package connmgr

import (
	"strconv"
	"strings"
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
	free []uint32      // freed slots, reused last-freed first to keep the table dense
	used atomic.Uint32 // slots ever handed out: the walk's bound (written under mu)
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
		if i = t.used.Load(); i == slotChunk*slotChunks {
			return 0, false
		}
		if i&(slotChunk-1) == 0 {
			t.dir[i>>slotChunkBits].Store(new([slotChunk]slot))
		}
		t.used.Store(i + 1)
	}
	// ss is already nil: release cleared it.
	sl := t.at(i)
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
	n := t.used.Load()
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
	slotHex, nHex, found := strings.Cut(id[len(prefix)+1:], "-")
	if !found {
		return 0, 0, false
	}
	s, ok1 := parseHex(slotHex, 32)
	n, ok2 := parseHex(nHex, 64)
	return uint32(s), n, ok1 && ok2
}

// parseHex parses s as hex of at most bits bits, in the canonical form
// sessionID writes: what strconv parses and writes back unchanged (no
// sign, leading zeros or upper case).
func parseHex(s string, bits int) (uint64, bool) {
	if len(s) == 0 || len(s) > bits/4 {
		return 0, false // also spares ParseUint's error allocation for junk
	}
	v, err := strconv.ParseUint(s, 16, bits)
	var buf [16]byte
	return v, err == nil && string(strconv.AppendUint(buf[:0], v, 16)) == s
}
