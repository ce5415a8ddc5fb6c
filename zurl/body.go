package zurl

import (
	"io"
	"sync"
)

// bodyQueue is the outbound request body: the session loop pushes the
// requester's data packets, the HTTP transport reads them, and every chunk
// read is credited back to the requester, so at most the credits we granted
// are ever buffered here.
type bodyQueue struct {
	mu       sync.Mutex
	cond     *sync.Cond
	chunks   [][]byte
	eof      bool
	closed   bool
	consumed func(n int)
}

func newBodyQueue(consumed func(int)) *bodyQueue {
	q := &bodyQueue{consumed: consumed}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *bodyQueue) push(b []byte, last bool) {
	q.mu.Lock()
	if len(b) > 0 {
		q.chunks = append(q.chunks, b)
	}
	if last {
		q.eof = true
	}
	q.cond.Broadcast()
	q.mu.Unlock()
}

func (q *bodyQueue) close() {
	q.mu.Lock()
	q.closed = true
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
		q.chunks = q.chunks[1:]
	} else {
		q.chunks[0] = q.chunks[0][n:]
	}
	q.mu.Unlock()
	if q.consumed != nil && n > 0 {
		q.consumed(n)
	}
	return n, nil
}
