// Package wsdeps pins the WebSocket libraries in go.mod until the tiers
// that use them import them: github.com/gobwas/ws (framing on bytes, for
// the connection manager's event loop) and github.com/gorilla/websocket
// (the well-known client the tests and the load tool drive, and zurl's
// outbound WebSocket client).
package wsdeps

import (
	_ "github.com/gobwas/ws"
	_ "github.com/gobwas/ws/wsflate"
	_ "github.com/gorilla/websocket"
)
