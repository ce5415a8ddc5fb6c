package handler

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

// checkWheel fails unless every session in a bucket knows its place, none
// is there twice, the count is right, and, when e is given, each is a live
// session of e and every live session is in a bucket.
func checkWheel(t *testing.T, w *wheel, e *engine) {
	t.Helper()
	seen := map[*session]bool{}
	for i, list := range w.slots {
		for pos, s := range list {
			if s.wheelAt != i+1 || s.wheelPos != pos {
				t.Fatalf("session %s in slot %d at %d thinks it is at %d/%d", s.id, i, pos, s.wheelAt-1, s.wheelPos)
			}
			if seen[s] {
				t.Fatalf("session %s twice in the wheel", s.id)
			}
			seen[s] = true
			if e != nil && e.sessions[s.key] != s {
				t.Fatalf("ended session %s (done %v) still in the wheel", s.id, s.done)
			}
		}
	}
	if len(seen) != w.len() {
		t.Fatalf("wheel counts %d, holds %d", w.len(), len(seen))
	}
	if e != nil && len(seen) != len(e.sessions) {
		t.Fatalf("wheel holds %d sessions, engine %d", len(seen), len(e.sessions))
	}
}

func wsess(id string) *session { return &session{id: id, key: sessionKey{"w", id}} }

// takeIDs runs one tick and returns the sorted ids it took, dropping them.
func takeIDs(w *wheel, now time.Time) []string {
	var ids []string
	for _, list := range w.take(now) {
		for _, s := range list {
			if s.wheelAt == wheelTaken {
				ids = append(ids, s.id)
				s.wheelAt = 0
			}
		}
	}
	w.release()
	sort.Strings(ids)
	return ids
}

// A session comes out at the first tick in or after the second it is due
// in, not before; a tick covers every second since the last one.
func TestWheelTakesAtDueSecond(t *testing.T) {
	t.Parallel()
	ep := time.Now()
	w := newWheel(ep)
	at := func(sec float64) time.Time { return ep.Add(time.Duration(sec * float64(time.Second))) }
	for id, due := range map[string]float64{"a": 0.2, "b": 1.7, "c": 5, "d": 5.9, "e": 9.1, "f": 63} {
		w.add(wsess(id), at(due))
	}
	checkWheel(t, &w, nil)
	for _, c := range []struct {
		now  float64
		want string
	}{{0.1, "[a]"}, {0.9, "[]"}, {1.05, "[b]"}, {4.99, "[]"}, {5.0, "[c d]"}, {8.5, "[]"}, {12, "[e]"}, {62.9, "[]"}, {63, "[f]"}} {
		if got := fmt.Sprint(takeIDs(&w, at(c.now))); got != c.want {
			t.Fatalf("tick at %.2fs took %s, want %s", c.now, got, c.want)
		}
	}
	if w.len() != 0 {
		t.Fatalf("%d left", w.len())
	}
}

// A session put back for later in the current second, or for a time
// already past, is seen by the next tick even if it lands in the same
// second; the tick that put it back does not take it again.
func TestWheelCurrentSecondRevisited(t *testing.T) {
	t.Parallel()
	ep := time.Now()
	w := newWheel(ep)
	s := wsess("s")
	w.add(s, ep.Add(3500*time.Millisecond))
	lists := w.take(ep.Add(3200 * time.Millisecond))
	if len(lists) != 1 || lists[0][0] != s || s.wheelAt != wheelTaken {
		t.Fatalf("took %v", lists)
	}
	w.add(s, ep.Add(3500*time.Millisecond)) // not due yet: back it goes
	if len(lists) != 1 || w.len() != 1 {
		t.Fatalf("put-back session changed this tick's lists (%d) or count (%d)", len(lists), w.len())
	}
	w.release()
	if got := fmt.Sprint(takeIDs(&w, ep.Add(3900*time.Millisecond))); got != "[s]" {
		t.Fatalf("second tick in the same second took %s", got)
	}
	w.add(s, ep.Add(-time.Hour)) // long overdue: next tick
	if got := fmt.Sprint(takeIDs(&w, ep.Add(4100*time.Millisecond))); got != "[s]" {
		t.Fatalf("overdue session: took %s", got)
	}
}

// Removing sessions from anywhere in their buckets keeps every other
// session's place right, and adding a session already in the wheel moves
// it rather than listing it twice.
func TestWheelRemoveAndMove(t *testing.T) {
	t.Parallel()
	ep := time.Now()
	w := newWheel(ep)
	r := rand.New(rand.NewPCG(1, 2))
	var all []*session
	for i := range 400 {
		s := wsess(fmt.Sprintf("s%03d", i))
		all = append(all, s)
		w.add(s, ep.Add(time.Duration(r.IntN(8000))*time.Millisecond))
	}
	live := map[string]bool{}
	for _, s := range all {
		live[s.id] = true
	}
	for _, i := range r.Perm(len(all))[:200] {
		w.remove(all[i])
		w.remove(all[i]) // twice: no-op
		delete(live, all[i].id)
	}
	for _, s := range all[:50] { // move: removed or not, it is in exactly one bucket after
		w.add(s, ep.Add(time.Duration(r.IntN(8000))*time.Millisecond))
		w.add(s, ep.Add(time.Duration(r.IntN(8000))*time.Millisecond))
		live[s.id] = true
	}
	checkWheel(t, &w, nil)
	if w.len() != len(live) {
		t.Fatalf("wheel has %d, want %d", w.len(), len(live))
	}
	got := takeIDs(&w, ep.Add(8*time.Second))
	if len(got) != len(live) {
		t.Fatalf("took %d, want %d", len(got), len(live))
	}
	for _, id := range got {
		if !live[id] {
			t.Fatalf("removed session %s taken", id)
		}
	}
}

// Ending a session the current tick has taken makes the tick skip it.
func TestWheelRemoveTaken(t *testing.T) {
	t.Parallel()
	ep := time.Now()
	w := newWheel(ep)
	a, b := wsess("a"), wsess("b")
	w.add(a, ep)
	w.add(b, ep)
	lists := w.take(ep.Add(time.Second))
	w.remove(b)
	if a.wheelAt != wheelTaken || b.wheelAt != 0 || len(lists) != 1 || len(lists[0]) != 2 {
		t.Fatalf("a at %d, b at %d", a.wheelAt, b.wheelAt)
	}
	w.release()
	checkWheel(t, &w, nil)
}

// A clock jump of a span or more takes every bucket once, and due times
// beyond the span are cut to it, so nothing waits longer than one turn.
func TestWheelJumpAndClamp(t *testing.T) {
	t.Parallel()
	ep := time.Now()
	w := newWheel(ep)
	for i := range 200 {
		w.add(wsess(fmt.Sprint(i)), ep.Add(time.Duration(i)*317*time.Millisecond))
	}
	if got := takeIDs(&w, ep.Add(10*time.Minute)); len(got) != 200 {
		t.Fatalf("jump took %d of 200", len(got))
	}
	far := wsess("far")
	w.add(far, ep.Add(10*time.Minute+time.Hour))
	if got := takeIDs(&w, ep.Add(10*time.Minute+(wheelSlots-2)*time.Second)); len(got) != 0 {
		t.Fatalf("took %v before the end of the span", got)
	}
	if got := fmt.Sprint(takeIDs(&w, ep.Add(10*time.Minute+(wheelSlots-1)*time.Second))); got != "[far]" {
		t.Fatalf("far session not taken within a turn: %s", got)
	}
}

// Seconds before the epoch round down, as after it.
func TestWheelSecond(t *testing.T) {
	t.Parallel()
	ep := time.Now()
	w := newWheel(ep)
	for d, want := range map[time.Duration]int64{0: 0, 999 * time.Millisecond: 0, time.Second: 1,
		-1: -1, -time.Second: -1, -1001 * time.Millisecond: -2} {
		if got := w.second(ep.Add(d)); got != want {
			t.Errorf("second(epoch%+v) = %d, want %d", d, got, want)
		}
	}
}
