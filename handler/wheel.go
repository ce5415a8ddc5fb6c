package handler

import "time"

// wheelSlots is the wheel's span in seconds. The session expiry (60 s)
// bounds every session's next due time, so with the default timers a
// session waits in one bucket until it is due; a longer wait is cut to
// the span and the session is simply looked at again then. A power of
// two, so a second maps to its slot with a mask, negative seconds too.
const wheelSlots = 64

// wheelTaken marks a session a tick has taken out of its bucket and not
// yet put back: end must not touch a bucket for it, and the tick skips it
// once it is no longer so marked (ended by then).
const wheelTaken = -1

// wheel is a timing wheel of one-second buckets, so the once-a-second
// maintenance looks only at the sessions something could be due for,
// instead of at every held session. A session sits in at most one bucket;
// its place is kept in the session (wheelAt, wheelPos) so ending it
// removes it at once, without a search and without the wheel keeping an
// ended session alive until its bucket comes up.
//
// Seconds are counted from epoch with time.Time.Sub, which uses the
// monotonic clock, so a wall-clock step neither stalls nor floods the
// maintenance.
type wheel struct {
	epoch time.Time
	// cur is the last second a tick processed. Its bucket holds what falls
	// due later in that same second and is processed again by the next
	// tick, so two ticks landing in one second (ticker jitter) still see a
	// session that falls due between them.
	cur   int64
	n     int
	slots [wheelSlots][]*session
	taken [][]*session // the buckets the current tick took
}

func newWheel(epoch time.Time) wheel { return wheel{epoch: epoch} }

// second returns the wheel second t falls in (rounded down).
func (w *wheel) second(t time.Time) int64 {
	d := t.Sub(w.epoch)
	sec := int64(d / time.Second)
	if d < 0 && d%time.Second != 0 {
		sec--
	}
	return sec
}

// add puts s in the bucket of the second due falls in, moving it if it is
// already in one. A due time already past goes to the current second, so
// the next tick sees it.
func (w *wheel) add(s *session, due time.Time) {
	if s.wheelAt > 0 {
		w.remove(s)
	}
	b := min(max(w.second(due), w.cur), w.cur+wheelSlots-1)
	i := int(b & (wheelSlots - 1))
	s.wheelAt, s.wheelPos = i+1, len(w.slots[i])
	w.slots[i] = append(w.slots[i], s)
	w.n++
}

// remove takes s out of the wheel. The last session of the bucket takes
// its place, so removal costs the same however full the bucket is.
func (w *wheel) remove(s *session) {
	if s.wheelAt <= 0 {
		s.wheelAt = 0 // also makes the current tick skip a taken session
		return
	}
	i := s.wheelAt - 1
	list := w.slots[i]
	last := len(list) - 1
	moved := list[last]
	list[s.wheelPos] = moved
	moved.wheelPos = s.wheelPos
	list[last] = nil
	w.slots[i] = list[:last]
	s.wheelAt, s.wheelPos = 0, 0
	w.n--
}

// take detaches every bucket whose second has come by now (all of them if
// now is a whole span or more ahead) and marks their sessions taken. All
// are detached before any is examined, so a session put back during the
// tick, even into a bucket of this tick's range, is not examined twice
// with the same now. The caller puts back (add) or ends each session, then
// calls release.
func (w *wheel) take(now time.Time) [][]*session {
	to := max(w.second(now), w.cur) // a clock going back (tests) only redoes cur
	from := max(w.cur, to-wheelSlots+1)
	for b := from; b <= to; b++ {
		i := b & (wheelSlots - 1)
		list := w.slots[i]
		if len(list) == 0 {
			continue
		}
		for _, s := range list {
			s.wheelAt = wheelTaken
		}
		w.taken = append(w.taken, list)
		w.n -= len(list)
		w.slots[i] = nil
	}
	w.cur = to
	return w.taken
}

// release drops the buckets the last take returned. They are not reused:
// a bucket's slice is as big as the most sessions that ever fell due in
// one second, and once a second an allocation costs less than holding
// that peak for good.
func (w *wheel) release() {
	clear(w.taken)
	w.taken = w.taken[:0]
}

// len returns how many sessions wait in the buckets (not those taken).
func (w *wheel) len() int { return w.n }
