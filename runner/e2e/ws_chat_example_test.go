package e2e

import (
	"bufio"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pushpin-go/pushpin/internal/testwait"
)

// startChatExample runs the README's WebSocket-over-HTTP chat backend
// (scripts/examples/wschat.py, Python's standard library only) publishing to
// the stack's handler, and returns its port once it listens.
func startChatExample(t *testing.T, s *stack, port int) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatalf("python3 is needed for the chat example: %v", err)
	}
	cmd := exec.Command("python3", filepath.Join(repoRoot, "scripts", "examples", "wschat.py"),
		fmt.Sprint(port), s.publishURL())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		if !strings.Contains(line, "listening") {
			t.Fatalf("wschat.py: %q", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wschat.py did not start")
	}
}

// chatDial connects a WebSocket client to the stack and returns it with the
// welcome message it got.
func chatDial(t *testing.T, s *stack) (*websocket.Conn, string) {
	t.Helper()
	var c *websocket.Conn
	testwait.For(t, 15*time.Second, func() error {
		var err error
		c, _, err = websocket.DefaultDialer.Dial(fmt.Sprintf("ws://127.0.0.1:%d/chat", s.HTTPPort), nil)
		return err
	})
	t.Cleanup(func() { c.Close() })
	return c, chatRead(t, c)
}

func chatRead(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	typ, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("reading a chat message: %v", err)
	}
	if typ != websocket.TextMessage {
		t.Fatalf("message type %d, want text", typ)
	}
	return string(b)
}

// The README's chat example works as written: members get a welcome, a
// message from one reaches every member through a publish, a renamed member
// is named by the meta the backend set, and a publish from outside (the
// README's curl line) reaches everyone.
func TestWSChatExample(t *testing.T) {
	forEachStack(t, func(t *testing.T, tr tiers) {
		port := freePort(t)
		s := tr.start(t, fmt.Sprintf("* localhost:%d,over_http", port))
		startChatExample(t, s, port)
		alice, w1 := chatDial(t, s)
		bob, w2 := chatDial(t, s)
		if !strings.HasPrefix(w1, "welcome, ") || !strings.HasPrefix(w2, "welcome, ") {
			t.Fatalf("welcomes %q %q", w1, w2)
		}
		if err := alice.WriteMessage(websocket.TextMessage, []byte("/nick alice")); err != nil {
			t.Fatal(err)
		}
		if got := chatRead(t, alice); got != "you are now alice" {
			t.Fatalf("nick: %q", got)
		}
		// The subscription is the handler's once the OPEN response went
		// through; a message may race it, so say hello until bob hears it.
		testwait.For(t, 15*time.Second, func() error {
			if err := alice.WriteMessage(websocket.TextMessage, []byte("hi all")); err != nil {
				return err
			}
			_ = bob.SetReadDeadline(time.Now().Add(time.Second))
			_, b, err := bob.ReadMessage()
			if err != nil {
				return err
			}
			if string(b) != "alice: hi all" {
				return fmt.Errorf("bob got %q", b)
			}
			return nil
		})
		_ = bob.SetReadDeadline(time.Time{})
		// Drain alice's own copies, then a publish from outside reaches both.
		s.publish(t, `{"items":[{"channel":"room","formats":{"ws-message":{"content":"server says hi"}}}]}`)
		for _, c := range []*websocket.Conn{alice, bob} {
			for {
				got := chatRead(t, c)
				if got == "server says hi" {
					break
				}
				if got != "alice: hi all" {
					t.Fatalf("unexpected %q", got)
				}
			}
		}
	}, allOurs, realCondureOurs, ourConnMgrReal, allReal)
}
