package handler

import (
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/internal/testwait"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// A handler that takes over a session the moment it starts (the proxy
// queued it while the handler was down) holds its first packets until the
// connection manager's subscription has reached its zhttp out socket, so
// the connection manager gets them: a PUB drops what it sends before then,
// and the client would hang. Here the connection manager subscribes only
// once the handler has taken the session over.
func TestFirstPacketsWaitForConnMgrSubscription(t *testing.T) {
	t.Parallel()
	cfg := handlerCfg(t.TempDir())
	cm := newConnMgr(t, cfg, "cm1")
	defer cm.close()
	push := proxyPush(t, cfg)
	defer push.Close()
	r := startHandler(t, cfg, zerolog.Nop())
	accept := holdAccept("cm1", "ch", 1000, "s1").AppendMessage(nil)
	testwait.For(t, 5*time.Second, func() error { return push.TrySend(accept) })
	waitCounts(t, r.engine(t), 1, 1)

	// The fake connection manager's socket takes in the handler's pipe,
	// and sends its subscription, only once it receives.
	got := make(chan *zhttp.Packet, 16)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { defer close(done); cm.watch(stop, "s1", func(p *zhttp.Packet) { got <- p }) }()
	defer func() { close(stop); <-done }()
	select {
	case p := <-got:
		if p.Type != zhttp.KeepAlive || p.Seq != 1 {
			t.Fatalf("first packet %+v, want the keep-alive that resumes the session (seq 1)", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's first packet never reached the connection manager")
	}
}
