package connmgr

import "testing"

// A worker holds back credits only while they are small: once a session's
// reach half the window we grant (the server has at most half left to
// send it), the batch is due and the worker flushes it even with more
// data packets queued. Entries merge per session.
func TestCreditBatchDueAtHalfWindow(t *testing.T) {
	s := &Server{cfg: Config{BufferSize: 8192}}
	b := &creditBatch{s: s}
	x := &exchange{s: s, ss: &session{id: "x", to: "srv", multi: true}}
	y := &exchange{s: s, ss: &session{id: "y", to: "srv", multi: true}}
	for i := 0; i < 3; i++ {
		b.add(x, 1024)
		b.add(y, 1024)
	}
	if b.due || len(b.list) != 2 || b.list[0].n != 3072 {
		t.Fatalf("due=%v entries=%+v: want 2 entries of 3072, not due", b.due, b.list)
	}
	b.add(y, 1024)
	if !b.due {
		t.Fatal("4096 of 8192 held for one session: want due")
	}
	b.gen, b.due = 0, false // what flush leaves (without sending)
	b.list = b.list[:0]
	b.add(x, 100)
	if b.due || len(b.list) != 1 || b.list[0].n != 100 {
		t.Fatalf("after a flush: due=%v entries=%+v", b.due, b.list)
	}
}
