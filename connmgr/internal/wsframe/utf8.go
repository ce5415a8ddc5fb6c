package wsframe

import "unicode/utf8"

// UTF8 validates a text message that arrives in pieces: a character may
// be split between two pieces. The zero value is ready.
type UTF8 struct {
	pend [utf8.UTFMax]byte
	n    uint8 // bytes of an incomplete character held in pend
}

// Write checks p, the next piece; false once the text cannot be UTF-8
// whatever follows.
func (u *UTF8) Write(p []byte) bool {
	for u.n > 0 && len(p) > 0 {
		u.pend[u.n] = p[0]
		u.n++
		p = p[1:]
		if utf8.FullRune(u.pend[:u.n]) {
			ok := utf8.Valid(u.pend[:u.n])
			u.n = 0
			if !ok {
				return false
			}
			break
		}
		if !validPrefix(u.pend[:u.n]) {
			return false
		}
	}
	if len(p) == 0 {
		return true
	}
	// The last character may be incomplete: hold it for the next piece.
	tail := len(p)
	for i := len(p) - 1; i >= 0 && i >= len(p)-(utf8.UTFMax-1); i-- {
		if utf8.RuneStart(p[i]) {
			if !utf8.FullRune(p[i:]) {
				tail = i
			}
			break
		}
	}
	if !utf8.Valid(p[:tail]) || !validPrefix(p[tail:]) {
		return false
	}
	u.n = uint8(copy(u.pend[:], p[tail:]))
	return true
}

// Done reports whether the text so far ends on a character boundary: at
// the end of a message, it must.
func (u *UTF8) Done() bool { return u.n == 0 }

// validPrefix reports whether b (shorter than its character) can start a
// valid UTF-8 sequence (RFC 3629 §4).
func validPrefix(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	c := b[0]
	lo, hi := byte(0x80), byte(0xbf)
	switch {
	case c >= 0xc2 && c <= 0xdf, c >= 0xe1 && c <= 0xec, c == 0xee || c == 0xef, c >= 0xf1 && c <= 0xf3:
	case c == 0xe0:
		lo = 0xa0
	case c == 0xed:
		hi = 0x9f
	case c == 0xf0:
		lo = 0x90
	case c == 0xf4:
		hi = 0x8f
	default:
		return false
	}
	for i, x := range b[1:] {
		if i == 0 && (x < lo || x > hi) || i > 0 && (x < 0x80 || x > 0xbf) {
			return false
		}
	}
	return true
}
