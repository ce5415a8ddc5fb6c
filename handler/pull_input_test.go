package handler

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/proto/zhttp"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

// A publish larger than push_in_http_max_body_size sent on the PULL input
// reaches no subscriber (libzmq refuses it before allocating it), and the
// handler goes on serving: a normal publish that follows is delivered.
func TestOversizePullMessageIsRefused(t *testing.T) {
	t.Parallel()
	const maxBody = 100000
	dir := t.TempDir()
	cfg := handlerCfg(dir)
	cfg.Handler.PushInSpec = []string{"ipc://" + filepath.Join(dir, "pull")}
	cfg.Handler.PushInMaxBodySize = maxBody
	cm := newConnMgr(t, cfg, "cm")
	accept := proxyPush(t, cfg)
	defer accept.Close()
	startHandler(t, cfg, zerolog.Nop())
	if err := accept.Send(holdAccept("cm", "c", 1<<30, "watched").AppendMessage(nil)); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var bodies [][]byte
	stop, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		cm.watch(stop, "watched", func(p *zhttp.Packet) {
			mu.Lock()
			bodies = append(bodies, p.Body)
			mu.Unlock()
		})
	}()
	defer func() { close(stop); <-watched; cm.close() }()
	received := func(content string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, b := range bodies {
			if string(b) == content {
				return true
			}
		}
		return false
	}
	item := func(content string) []byte {
		return []byte(fmt.Sprintf(`J{"channel":"c","formats":{"http-stream":{"content":%q}}}`, content))
	}

	push, err := zmq.New(zmq.Push, zmq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer push.Close()
	if err := push.Connect(cfg.Handler.PushInSpec[0]); err != nil {
		t.Fatal(err)
	}
	// The hold is in place once a first publish reaches it.
	waitFor(t, 10*time.Second, func() error {
		if err := push.Send(item("ready\n")); err != nil {
			return err
		}
		if !received("ready\n") {
			return fmt.Errorf("first publish not delivered")
		}
		return nil
	})

	big := strings.Repeat("x", maxBody+1)
	if err := push.Send(item(big)); err != nil {
		t.Fatal(err)
	}
	// libzmq drops the connection the big message came on, and the PUSH
	// reconnects: a publish sent just after may go down with it, so send
	// until one arrives.
	n := 0
	waitFor(t, 10*time.Second, func() error {
		n++
		content := fmt.Sprintf("after %d\n", n)
		if err := push.Send(item(content)); err != nil {
			return err
		}
		for i := 1; i <= n; i++ {
			if received(fmt.Sprintf("after %d\n", i)) {
				return nil
			}
		}
		return fmt.Errorf("no publish delivered after the oversize one")
	})
	mu.Lock()
	defer mu.Unlock()
	for _, b := range bodies {
		if len(b) > maxBody || bytes.Contains(b, []byte("xxxxxxxx")) {
			t.Fatalf("oversize publish delivered (%d bytes)", len(b))
		}
	}
}
