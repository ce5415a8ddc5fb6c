package connmgr

import (
	"strings"
	"testing"
)

func TestSessionIDRoundTrip(t *testing.T) {
	for _, c := range []struct {
		slot uint32
		n    uint64
	}{{0, 0}, {1, 1}, {0x3ff, 0x400}, {1<<22 - 1, 1<<64 - 1}} {
		id := sessionID("1234", c.slot, c.n)
		i, n, ok := parseSessionID("1234", id)
		if !ok || i != c.slot || n != c.n {
			t.Errorf("%q: parsed (%d, %d, %v), want (%d, %d)", id, i, n, ok, c.slot, c.n)
		}
	}
}

// Only the canonical form parses, so that (slot, n) matching the slot's
// session proves the whole id is that session's.
func TestParseSessionIDRejects(t *testing.T) {
	for _, id := range []string{
		"", "1234", "1234-", "1234-1", "1234-1-", "1234--1", "1234-01-1", "1234-1-01",
		"1234-A-1", "1234-1-g", "123-1-1", "12345-1-1", "1234_1-1", "1234-1-1-1",
		"1234-100000000-1", "1234-1-10000000000000000", "x234-1-1",
	} {
		if i, n, ok := parseSessionID("1234", id); ok {
			t.Errorf("%q parsed as (%d, %d)", id, i, n)
		}
	}
}

func FuzzParseSessionID(f *testing.F) {
	for _, s := range []string{"p-0-0", "p-3ff-1a", "p-01-1", "p--", "p-1-1-1", "q-1-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		i, n, ok := parseSessionID("p", id)
		if !ok {
			return
		}
		if back := sessionID("p", i, n); back != id {
			t.Fatalf("%q parsed as (%d, %d), which is %q", id, i, n, back)
		}
	})
}

func TestSlotTableReuseAndWalk(t *testing.T) {
	var tb slotTable
	conns := make([]*conn, 2*slotChunk+5) // spans three chunks
	for k := range conns {
		conns[k] = &conn{serial: uint64(k + 1)}
		i, ok := tb.alloc(conns[k])
		if !ok || i != uint32(k) {
			t.Fatalf("alloc %d: slot %d, %v", k, i, ok)
		}
	}
	// A release by anyone but the holder is ignored.
	tb.release(3, conns[4])
	if tb.at(3).c.Load() != conns[3] {
		t.Fatal("slot 3 released by the wrong connection")
	}
	tb.release(3, conns[3])
	tb.release(slotChunk+1, conns[slotChunk+1])
	if tb.at(3).c.Load() != nil {
		t.Fatal("slot 3 still held after release")
	}
	var seen []uint32
	tb.each(func(i uint32, sl *slot, c *conn) {
		if c != conns[i] || sl != tb.at(i) {
			t.Fatalf("slot %d: conn %p, want %p", i, c, conns[i])
		}
		seen = append(seen, i)
	})
	if len(seen) != len(conns)-2 {
		t.Fatalf("walk saw %d slots, want %d", len(seen), len(conns)-2)
	}
	// The last freed is reused first, and the table does not grow.
	c := &conn{}
	tb.at(slotChunk + 1).lastIn.Store(7)
	if i, _ := tb.alloc(c); i != slotChunk+1 || tb.at(i).lastIn.Load() != 0 {
		t.Fatalf("reuse: slot %d (lastIn %d), want %d reset", i, tb.at(i).lastIn.Load(), slotChunk+1)
	}
	if i, _ := tb.alloc(c); i != 3 {
		t.Fatalf("reuse: slot %d, want 3", i)
	}
	if i, _ := tb.alloc(c); i != uint32(len(conns)) {
		t.Fatalf("new slot %d, want %d", i, len(conns))
	}
	if tb.at(1<<31) != nil || tb.at(uint32(3*slotChunk)) != nil {
		t.Fatal("a slot never handed out exists")
	}
}

// A session id finds its session only while that session is the
// connection's current one; an epoll key finds its connection only while
// the slot is not reused.
func TestLookupStaleIDs(t *testing.T) {
	s := &Server{cfg: Config{SessionPrefix: "77"}}
	c := &conn{s: s, serial: 0x100000005}
	if !s.addConn(c) {
		t.Fatal("addConn")
	}
	ss1 := s.newSession(c)
	s.register(ss1)
	if !strings.HasPrefix(ss1.id, "77-0-") || s.lookup(ss1.id) != ss1 {
		t.Fatalf("lookup %q: %v", ss1.id, s.lookup(ss1.id))
	}
	ss2 := s.newSession(c) // the next request on the keep-alive connection
	s.register(ss2)
	s.unregister(ss1) // the old session ending late leaves the new one
	if s.lookup(ss1.id) != nil || s.lookup(ss2.id) != ss2 {
		t.Fatalf("after the second request: %v, %v", s.lookup(ss1.id), s.lookup(ss2.id))
	}
	key := c.epollKey()
	if key == wakeKey || s.connByKey(key) != c {
		t.Fatalf("key %x: %v", key, s.connByKey(key))
	}
	s.forgetConn(c)
	c2 := &conn{s: s, serial: 6}
	s.addConn(c2)
	if c2.slotIdx != c.slotIdx {
		t.Fatalf("slot %d not reused (%d)", c.slotIdx, c2.slotIdx)
	}
	if s.connByKey(key) != nil || s.lookup(ss2.id) != nil {
		t.Fatal("a closed connection's key or session id found the slot's new connection")
	}
	s.forgetConn(c2)
}
