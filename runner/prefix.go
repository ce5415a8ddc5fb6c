package runner

import (
	"bufio"
	"errors"
	"io"
	"sync"
)

// lockedWriter serialises whole lines from several children onto one output.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// maxLine bounds the bytes kept for one line; a longer line is passed on in
// pieces (only the first gets the label) rather than buffered without limit.
const maxLine = 64 << 10

// InsertLabel returns line with "[label] " inserted the way Pushpin's runner
// does for merged output: after a leading "[LEVEL] YYYY-MM-DD HH:MM:SS.mmm "
// header when the line has one, else at the start.
func InsertLabel(dst, line []byte, label string) []byte {
	n := headerLen(line)
	dst = append(dst, line[:n]...)
	dst = append(dst, '[')
	dst = append(dst, label...)
	dst = append(dst, "] "...)
	return append(dst, line[n:]...)
}

// headerLen returns the length of a Pushpin log header "[INFO] 2024-01-02
// 03:04:05.678 " at the start of line, or 0.
func headerLen(line []byte) int {
	if len(line) < 3 || line[0] != '[' {
		return 0
	}
	i := 1
	for i < len(line) && line[i] >= 'A' && line[i] <= 'Z' {
		i++
	}
	if i == 1 || i+2 >= len(line) || line[i] != ']' || line[i+1] != ' ' {
		return 0
	}
	i += 2
	const layout = "0000-00-00 00:00:00.000 "
	if len(line)-i < len(layout) {
		return 0
	}
	for j := 0; j < len(layout); j++ {
		c := line[i+j]
		if layout[j] == '0' {
			if c < '0' || c > '9' {
				return 0
			}
		} else if c != layout[j] {
			return 0
		}
	}
	return i + len(layout)
}

// copyLabelled copies r to w line by line, inserting the label into each
// line, until r ends. Each write to w is one whole (labelled) line.
func copyLabelled(w io.Writer, r io.Reader, label string) error {
	br := bufio.NewReaderSize(r, maxLine)
	var out []byte
	atLineStart := true
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			out = out[:0]
			if atLineStart {
				out = InsertLabel(out, chunk, label)
			} else {
				out = append(out, chunk...)
			}
			atLineStart = chunk[len(chunk)-1] == '\n'
			if err == io.EOF && !atLineStart {
				out = append(out, '\n')
			}
			if _, werr := w.Write(out); werr != nil {
				return werr
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil
		default:
			return err
		}
	}
}
