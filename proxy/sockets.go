package proxy

import (
	"fmt"
	"os"

	"github.com/pushpin-go/pushpin/proto/zmq"
)

// sockets are created and connected by Run, then each is handed to the one
// goroutine that owns it (GOROUTINES.md).
type sockets struct {
	condureIn       *zmq.Socket // PULL, connect: first packets from the connection manager
	condureInStream *zmq.Socket // ROUTER identity=id, connect: later packets
	condureOut      *zmq.Socket // PUB, connect: everything to the connection manager
	zurlOut         *zmq.Socket // PUSH, connect: first packets to zurl
	zurlOutStream   *zmq.Socket // ROUTER (mandatory), connect: later packets to zurl
	zurlIn          *zmq.Socket // SUB "<id> ", connect: zurl's replies
	accept          *zmq.Socket // PUSH, bind: handoff.Accept to the handler
	retry           *zmq.Socket // PULL, bind: handoff.Retry from the handler
	wsCtlIn         *zmq.Socket // PULL, bind: ws-control items from the handler (optional)
	wsCtlOut        *zmq.Socket // PUSH, bind: ws-control items to the handler (optional)
	command         *zmq.Socket // ROUTER, bind: zrpc commands (refresh, conncheck; optional)
}

func (ss *sockets) close() {
	for _, s := range []*zmq.Socket{ss.condureIn, ss.condureInStream, ss.condureOut, ss.zurlOut,
		ss.zurlOutStream, ss.zurlIn, ss.accept, ss.retry, ss.wsCtlIn, ss.wsCtlOut, ss.command} {
		if s != nil {
			s.Close()
		}
	}
}

func (p *Proxy) openSockets() (*sockets, error) {
	pc := &p.cfg.Proxy
	var ipcMode os.FileMode
	if pc.IPCFileMode > 0 {
		ipcMode = os.FileMode(pc.IPCFileMode)
	}
	ss := &sockets{}
	type spec struct {
		dst   **zmq.Socket
		name  string
		t     zmq.Type
		o     zmq.Options
		specs []string
		bind  bool
	}
	all := []spec{
		{&ss.condureIn, "condure_in_specs", zmq.Pull, zmq.Options{RcvHWM: 100}, pc.CondureInSpecs, false},
		{&ss.condureInStream, "condure_in_stream_specs", zmq.Router, zmq.Options{Identity: p.id, RcvHWM: 101000}, pc.CondureInStreamSpecs, false},
		{&ss.condureOut, "condure_out_specs", zmq.Pub, zmq.Options{SndHWM: 101000, NoDrop: true}, pc.CondureOutSpecs, false},
		{&ss.zurlOut, "zurl_out_specs", zmq.Push, zmq.Options{SndHWM: 100}, pc.ZurlOutSpecs, false},
		{&ss.zurlOutStream, "zurl_out_stream_specs", zmq.Router, zmq.Options{RouterMandatory: true, SndHWM: 101000}, pc.ZurlOutStreamSpecs, false},
		{&ss.zurlIn, "zurl_in_specs", zmq.Sub, zmq.Options{Subscribe: []string{p.id + " "}, RcvHWM: 101000}, pc.ZurlInSpecs, false},
		{&ss.accept, "handler_accept_spec", zmq.Push, zmq.Options{SndHWM: 1000, IPCFileMode: ipcMode}, pc.HandlerAcceptSpec, true},
		{&ss.retry, "handler_retry_in_spec", zmq.Pull, zmq.Options{IPCFileMode: ipcMode}, pc.HandlerRetryInSpec, true},
	}
	// The ws-control pair and the command socket are optional, as in
	// Pushpin: without them WebSockets are plain passthrough.
	if len(pc.HandlerWSControlInSpec) > 0 && len(pc.HandlerWSControlOutSpec) > 0 {
		all = append(all,
			spec{&ss.wsCtlIn, "handler_ws_control_in_spec", zmq.Pull, zmq.Options{RcvHWM: 101000, IPCFileMode: ipcMode}, pc.HandlerWSControlInSpec, true},
			spec{&ss.wsCtlOut, "handler_ws_control_out_spec", zmq.Push, zmq.Options{SndHWM: 101000, IPCFileMode: ipcMode}, pc.HandlerWSControlOutSpec, true})
	}
	if len(pc.CommandSpec) > 0 {
		all = append(all, spec{&ss.command, "command_spec", zmq.Router, zmq.Options{IPCFileMode: ipcMode}, pc.CommandSpec, true})
	}
	for _, sp := range all {
		s, err := zmq.New(sp.t, sp.o)
		if err != nil {
			ss.close()
			return nil, fmt.Errorf("[proxy] %s: %w", sp.name, err)
		}
		*sp.dst = s
		if sp.bind {
			// A bound socket uses only the first spec (README §2).
			err = s.Bind(sp.specs[0])
		} else {
			for _, a := range sp.specs {
				if err = s.Connect(a); err != nil {
					break
				}
			}
		}
		if err != nil {
			ss.close()
			return nil, fmt.Errorf("[proxy] %s: %w", sp.name, err)
		}
	}
	return ss, nil
}
