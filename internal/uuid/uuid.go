// Package uuid makes random RFC 4122 version 4 UUIDs, the form Pushpin
// uses for outbound request ids, WebSocket-over-HTTP Connection-Ids and
// zurl instance ids.
package uuid

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
)

// V4 returns a random version 4 UUID in its 36-character text form. The
// ids must be unique, not secret: math/rand/v2's generator (ChaCha8,
// randomly seeded) costs no system call, crypto/rand one per id.
func V4() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}
