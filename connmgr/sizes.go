package connmgr

import (
	"fmt"
	"unsafe"
)

// Sizes reports the fixed per-connection and per-session struct sizes
// (condure's --sizes), for capacity planning.
func Sizes() string {
	return fmt.Sprintf("conn=%d session=%d exchange=%d websocket=%d", unsafe.Sizeof(conn{}), unsafe.Sizeof(session{}), unsafe.Sizeof(exchange{}), unsafe.Sizeof(wsSession{}))
}
