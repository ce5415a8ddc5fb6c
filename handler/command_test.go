package handler

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	ts "github.com/pushpin-go/pushpin/proto/tnetstring"
	"github.com/pushpin-go/pushpin/proto/zmq"
)

// callCommand sends one zrpc request on a REQ socket to the handler's command socket
// and returns the decoded response.
func callCommand(t *testing.T, spec string, req map[string]any) map[string]any {
	t.Helper()
	s, err := zmq.New(zmq.Req, zmq.Options{RecvTimeout: 10000})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Connect(spec); err != nil {
		t.Fatal(err)
	}
	b, err := ts.Encode(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(b); err != nil {
		t.Fatal(err)
	}
	msg, err := s.Recv()
	if err != nil {
		t.Fatalf("no reply to %v: %v", req["method"], err)
	}
	v, err := ts.Decode(msg[0])
	m, ok := v.(map[string]any)
	if err != nil || !ok {
		t.Fatalf("reply %q: %v", msg[0], err)
	}
	return m
}

// The recover command says it is not supported yet instead of answering
// success and doing nothing.
func TestRecoverCommandNotSupported(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := handlerCfg(dir)
	cfg.Handler.CommandSpec = []string{"ipc://" + filepath.Join(dir, "command")}
	startHandler(t, cfg, zerolog.Nop())
	m := callCommand(t, cfg.Handler.CommandSpec[0], map[string]any{"id": "r1", "method": "recover"})
	if m["success"] != false || string(asBytes(m["condition"])) != "not-supported" ||
		string(asBytes(m["value"])) != "recover is not supported yet" || string(asBytes(m["id"])) != "r1" {
		t.Fatalf("recover answered %v", m)
	}
}

func asBytes(v any) []byte {
	b, _ := v.([]byte)
	return b
}

// ipc_file_mode applies to the ipc:// sockets the handler binds.
func TestIPCFileModeOnBoundSockets(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := handlerCfg(dir)
	cfg.Handler.CommandSpec = []string{"ipc://" + filepath.Join(dir, "command")}
	cfg.Handler.PushInSpec = []string{"ipc://" + filepath.Join(dir, "pull")}
	cfg.Handler.PushInSubSpecs = []string{"ipc://" + filepath.Join(dir, "sub")}
	cfg.Handler.IPCFileMode = 0o600
	startHandler(t, cfg, zerolog.Nop())
	// The command socket answers once everything is bound.
	callCommand(t, cfg.Handler.CommandSpec[0], map[string]any{"id": "1", "method": "get-zmq-uris"})
	for _, name := range []string{"command", "pull", "sub"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s: mode %o, want 600", name, got)
		}
	}
}
