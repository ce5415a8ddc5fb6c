// Package zmq is the project's ZeroMQ socket layer. The default build uses
// libzmq through github.com/zeromq/goczmq (czmq.go: receives park in Go's
// netpoller on ZMQ_FD, nothing blocks inside C on the fast path); the
// `purego` build tag switches to
// github.com/go-zeromq/zmq4 for machines without libzmq, with the interop
// limits listed in purego.md.
//
// Ownership rule: a Socket is used by exactly one goroutine at a time. It
// may be created and bound by one goroutine and then handed to the goroutine
// that runs its loop (a channel send is the required memory barrier); that
// loop goroutine alone sends, receives and closes it. RecvLoop and Sender
// implement the two loop shapes every process needs; Locked lets several
// goroutines send on one socket in turn, each on its own goroutine.
package zmq

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Type is a ZeroMQ socket type.
type Type int

// Socket types used by Pushpin's processes.
const (
	Pair Type = iota
	Pub
	Sub
	Req
	Rep
	Dealer
	Router
	Pull
	Push
	XPub
	XSub
)

var typeNames = [...]string{"PAIR", "PUB", "SUB", "REQ", "REP", "DEALER", "ROUTER", "PULL", "PUSH", "XPUB", "XSUB"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "zmq.Type(" + strconv.Itoa(int(t)) + ")"
}

// Errors callers test for.
var (
	// ErrTimeout: nothing arrived (Recv) or could be queued (Send) within the
	// socket's timeout. Loops use it to look at their context.
	ErrTimeout = errors.New("zmq: timed out")
	// ErrUnreachable: a ROUTER_MANDATORY socket has no peer with the identity.
	ErrUnreachable = errors.New("zmq: host unreachable")
	// ErrClosed: the socket was closed.
	ErrClosed = errors.New("zmq: socket closed")
)

// Options are set before the socket binds or connects. Zero means the
// library default, except where noted.
type Options struct {
	Identity        string
	SndHWM, RcvHWM  int
	Linger          int // ms; -1 forever. Zero here means "use 0" (drop on close).
	LingerSet       bool
	RouterMandatory bool
	Subscribe       []string
	// RecvTimeout (ms) bounds how long Recv blocks; loops need it to notice
	// cancellation. 0 selects DefaultTimeout; -1 blocks forever.
	RecvTimeout int
	// SendTimeout (ms) bounds a blocked Send (full HWM, no peer). 0 selects
	// DefaultTimeout; -1 blocks forever.
	SendTimeout  int
	Immediate    bool
	TCPKeepalive bool
	// NoDrop makes a PUB/XPUB socket push back (Send times out) when a
	// subscriber's pipe is full, instead of silently dropping: delivery to
	// a connection manager must be lossless.
	NoDrop bool
	// XPubVerbose makes an XPUB socket hand every subscription to Recv,
	// also one it already has from another subscriber (WaitSubscribed
	// counts subscribers by them).
	XPubVerbose bool
	// MaxMsgSize (bytes), when positive, is ZMQ_MAXMSGSIZE: libzmq refuses
	// a larger message part before allocating it, and drops the connection
	// it came on (the peer reconnects). It bounds what one publisher can
	// make a receiving process allocate.
	MaxMsgSize int64
	// IPCFileMode, when non-zero, is applied to ipc:// paths after binding.
	IPCFileMode os.FileMode
}

// WaitSubscribed receives on an XPUB socket (with XPubVerbose) until n
// subscriptions have come in or d has passed, and returns how many came.
// A PUB drops what it sends before a subscriber's subscription has reached
// it (ZeroMQ's "slow joiner"): a process that sends as soon as it starts
// (the handler takes over the sessions the proxy queued for it while it
// was down) waits here first. With the pure-Go transport, whose XPUB hands
// no subscription to the application, it returns 0 at once.
func WaitSubscribed(ctx context.Context, s *Socket, n int, d time.Duration) int {
	if !SubscriptionsVisible {
		return 0
	}
	got := 0
	for deadline := time.Now().Add(d); got < n && time.Now().Before(deadline) && ctx.Err() == nil; {
		msg, err := s.Recv()
		if err != nil {
			if errors.Is(err, ErrTimeout) {
				continue
			}
			return got
		}
		if len(msg) > 0 && len(msg[0]) > 0 && msg[0][0] == 1 {
			got++
		}
	}
	return got
}

// DefaultTimeout (ms) for Recv/Send when the options leave it 0.
const DefaultTimeout = 100

// SplitSpec returns the transport and address of a ZeroMQ endpoint.
func SplitSpec(spec string) (transport, addr string, err error) {
	i := strings.Index(spec, "://")
	if i <= 0 {
		return "", "", fmt.Errorf("zmq: bad endpoint %q", spec)
	}
	return spec[:i], spec[i+3:], nil
}

func chmodIPC(spec string, mode os.FileMode) error {
	if mode == 0 {
		return nil
	}
	tr, addr, err := SplitSpec(spec)
	if err != nil || tr != "ipc" {
		return err
	}
	if err := os.Chmod(addr, mode); err != nil {
		return fmt.Errorf("zmq: ipc_file_mode on %s: %w", addr, err)
	}
	return nil
}

// prepareIPC creates the directory of an ipc:// endpoint and removes a stale
// socket file, so a restarted process can bind where a crashed one was.
func prepareIPC(spec string) {
	tr, addr, err := SplitSpec(spec)
	if err != nil || tr != "ipc" {
		return
	}
	if i := strings.LastIndexByte(addr, '/'); i > 0 {
		_ = os.MkdirAll(addr[:i], 0o755)
	}
}
