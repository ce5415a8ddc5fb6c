package zurl

import (
	"io"
	"sync"
)

// bodyQueue is the outbound request body: the ROUTER goroutine pushes the
// requester's data packets, the HTTP transport reads them, and every chunk
// read is credited back to the requester. The requester may only send what
// we credited, so more than limit bytes queued is a protocol violation.
type bodyQueue struct {
	mu       sync.Mutex
	cond     *sync.Cond
	chunks   [][]byte
	queued   int64
	limit    int64
	eof      bool
	closed   bool
	consumed func(n int)
}

func newBodyQueue(limit int64, consumed func(int)) *bodyQueue {
	q := &bodyQueue{limit: limit, consumed: consumed}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// push appends a chunk (the packet's body, owned from now on); last marks
// the end of the body. It reports false when the chunk overflows limit.
func (q *bodyQueue) push(b []byte, last bool) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.eof || q.closed {
		return true // late or duplicate data after the end is ignored
	}
	if len(b) > 0 {
		if q.queued+int64(len(b)) > q.limit {
			return false
		}
		q.chunks = append(q.chunks, b)
		q.queued += int64(len(b))
	}
	if last {
		q.eof = true
	}
	q.cond.Broadcast()
	return true
}

// close makes pending and later reads fail (the session was cancelled).
func (q *bodyQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.chunks = nil
	q.cond.Broadcast()
	q.mu.Unlock()
}

// Read implements io.Reader for the HTTP transport.
func (q *bodyQueue) Read(p []byte) (int, error) {
	q.mu.Lock()
	for len(q.chunks) == 0 && !q.eof && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		q.mu.Unlock()
		return 0, io.ErrClosedPipe
	}
	if len(q.chunks) == 0 {
		q.mu.Unlock()
		return 0, io.EOF
	}
	n := copy(p, q.chunks[0])
	if n == len(q.chunks[0]) {
		q.chunks[0] = nil
		q.chunks = q.chunks[1:]
	} else {
		q.chunks[0] = q.chunks[0][n:]
	}
	q.queued -= int64(n)
	q.mu.Unlock()
	if n > 0 && q.consumed != nil {
		q.consumed(n)
	}
	return n, nil
}
