package e2e

import (
	"errors"
	"fmt"
	"os/exec"
	"testing"
	"time"

	ts "github.com/pushpin-go/pushpin/proto/tnetstring"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

// Publishing through every input reaches a stream: ZeroMQ PUSH (J and T
// frames), the command socket (REQ), XPUB (2 frames, after the handler's
// subscription shows up) and the pushpin-publish CLI.
func TestPublishInputs(t *testing.T) {
	forEachStack(t, func(t *testing.T, tr tiers) {
		be := newGripBackend(t)
		s := tr.start(t, fmt.Sprintf("* localhost:%d", be.port()))
		s.waitReady(t, "/plain")
		st := openStreamExpect(t, s.Client, s.url("/stream?ch=inputs"), "stream open\n")
		publishUntilSeen(t, s, st, "inputs", "via http\n")

		push, err := zmq.New(zmq.Push, zmq.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer push.Close()
		if err := push.Connect(fmt.Sprintf("tcp://127.0.0.1:%d", s.PushInPort)); err != nil {
			t.Fatal(err)
		}
		mustSend(t, push, []byte(`J{"channel":"inputs","formats":{"http-stream":{"content":"via push json\n"}}}`))
		if l := st.next(t, 10*time.Second); l != "via push json\n" {
			t.Fatalf("got %q", l)
		}
		item, _ := ts.Encode(map[string]any{"channel": "inputs", "formats": map[string]any{"http-stream": map[string]any{"content": "via push tnetstring\n"}}})
		mustSend(t, push, append([]byte("T"), item...))
		if l := st.next(t, 10*time.Second); l != "via push tnetstring\n" {
			t.Fatalf("got %q", l)
		}
		// A malformed frame is dropped; the next one still goes through.
		mustSend(t, push, []byte("Xnot an item"))

		req, err := zmq.New(zmq.Req, zmq.Options{RecvTimeout: 10000})
		if err != nil {
			t.Fatal(err)
		}
		defer req.Close()
		if err := req.Connect(fmt.Sprintf("tcp://127.0.0.1:%d", s.CommandPort)); err != nil {
			t.Fatal(err)
		}
		cmd, _ := ts.Encode(map[string]any{"id": "c1", "method": "publish", "args": map[string]any{
			"items": []any{map[string]any{"channel": "inputs", "formats": map[string]any{"http-stream": map[string]any{"content": "via command\n"}}}}}})
		mustSend(t, req, cmd)
		reply, err := req.Recv()
		if err != nil {
			t.Fatal(err)
		}
		v, _ := ts.Decode(reply[0])
		if m, ok := v.(map[string]any); !ok || m["success"] != true || string(m["id"].([]byte)) != "c1" {
			t.Fatalf("command reply %q", reply[0])
		}
		if l := st.next(t, 10*time.Second); l != "via command\n" {
			t.Fatalf("got %q", l)
		}

		xpub, err := zmq.New(zmq.XPub, zmq.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer xpub.Close()
		if err := xpub.Connect(fmt.Sprintf("tcp://127.0.0.1:%d", s.PushInSubPort)); err != nil {
			t.Fatal(err)
		}
		// The handler subscribes to channels with local subscribers only.
		deadline := time.Now().Add(10 * time.Second)
		for {
			m, err := xpub.Recv()
			if err == nil && string(m[0]) == "\x01inputs" {
				break
			}
			if err != nil && !errors.Is(err, zmq.ErrTimeout) {
				t.Fatal(err)
			}
			if time.Now().After(deadline) {
				t.Fatal("no subscription for channel inputs seen on XPUB")
			}
		}
		mustSend(t, xpub, []byte("inputs"), []byte(`J{"formats":{"http-stream":{"content":"via sub\n"}}}`))
		if l := st.next(t, 10*time.Second); l != "via sub\n" {
			t.Fatalf("got %q", l)
		}

		out, err := exec.Command(bin("pushpin-publish"), fmt.Sprintf("--spec=http://127.0.0.1:%d", s.PushInHTTPPort),
			"--no-http-response", "--no-ws-message", "inputs", "via cli").CombinedOutput()
		if err != nil {
			t.Fatalf("pushpin-publish: %v %s", err, out)
		}
		if l := st.next(t, 10*time.Second); l != "via cli\n" {
			t.Fatalf("got %q", l)
		}
	}, allOurs, realEdgesOurs)
}

func mustSend(t *testing.T, s *zmq.Socket, frames ...[]byte) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.Send(frames...)
		if err == nil {
			return
		}
		if !errors.Is(err, zmq.ErrTimeout) || time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
}
