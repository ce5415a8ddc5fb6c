package connmgr

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/pushpin-go/pushpin/proto/zmq"
)

// Listen is one --listen value: `[addr:]port[,params...]` or
// `<path>,local[,...]` for a Unix socket.
type Listen struct {
	Addr   string // host:port, or the socket path when Local
	Local  bool
	Stream bool // "stream" mode (the only one Pushpin uses)
	TLS    bool
	// DefaultCert is the `default-cert=` identity name (TLS).
	DefaultCert string
	Mode        string // "mode=" for local sockets, octal
}

// ParseListen parses condure's --listen syntax.
func ParseListen(v string) (Listen, error) {
	parts := strings.Split(v, ",")
	l := Listen{Addr: parts[0]}
	if l.Addr == "" {
		return l, fmt.Errorf("%w: --listen %q: empty address", ErrConfig, v)
	}
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(p, "=")
		switch k {
		case "stream":
			l.Stream = true
		case "req":
			l.Stream = false
		case "local":
			l.Local = true
		case "tls":
			l.TLS = true
		case "default-cert":
			l.DefaultCert = val
		case "mode", "user", "group":
			if k == "mode" {
				l.Mode = val
			}
		default:
			return l, fmt.Errorf("%w: --listen %q: unknown parameter %q", ErrConfig, v, p)
		}
	}
	if !l.Local {
		if !strings.Contains(l.Addr, ":") {
			l.Addr = "0.0.0.0:" + l.Addr
		}
		if _, port, err := net.SplitHostPort(l.Addr); err != nil {
			return l, fmt.Errorf("%w: --listen %q: %v", ErrConfig, v, err)
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return l, fmt.Errorf("%w: --listen %q: %q is not a port", ErrConfig, v, port)
		}
	}
	return l, nil
}

// Config is what condure's command line sets, plus timings tests shorten.
type Config struct {
	ID         string   // zhttp instance id (--id), "condure" by default
	Listen     []Listen // --listen
	ZClient    []string // --zclient-stream base specs
	Connect    bool     // --zclient-connect
	BufferSize int      // --buffer-size: read buffer, max request head, initial credits
	MaxConn    int      // --stream-maxconn
	// StreamTimeout (--stream-timeout) bounds client inactivity: an idle
	// keep-alive connection, a stalled head or body read, a blocked write.
	StreamTimeout time.Duration
	// HeaderTimeout (--header-timeout, ours: condure has none) bounds the
	// time a request head may take: from accept for a new connection, from
	// its first byte for a later request on a keep-alive connection. A
	// client that never finishes its head (slowloris) is closed then
	// instead of holding its connection for StreamTimeout. Negative: off.
	HeaderTimeout time.Duration
	IPCFileMode   uint32 // --ipc-file-mode
	// Compression (--compression) offers permessage-deflate to WebSocket
	// clients (the runner passes it for [runner] allow_compression).
	Compression bool
	// MessagesMax (--messages-max, condure's default 100) bounds the
	// frames of a WebSocket connection waiting to be written to a client
	// that does not read; one more closes the connection.
	MessagesMax int
	// WSMaxMessage bounds a message from a WebSocket client (uncompressed
	// size); 1009 "message too big" past it. Not a flag (condure has
	// none); DefaultWSMaxMessage unless a test shortens it.
	WSMaxMessage int64

	// KeepAlive is the zhttp keep-alive interval (45 s), SessionTimeout
	// the expiry of a session that receives nothing (60 s), Sweep how often
	// both are checked (1 s).
	KeepAlive, SessionTimeout, Sweep time.Duration
	// SessionPrefix starts every session id ("<prefix>-<slot>-<hex>"); the
	// process id by default, so processes sharing a port never collide.
	SessionPrefix string
}

// Defaults condure uses when a flag is absent.
const (
	DefaultBufferSize  = 8192
	DefaultMaxConn     = 10000
	DefaultMessagesMax = 100
	// DefaultWSMaxMessage: messages are passed on piece by piece within
	// the server's credits, so this bounds what a server (the proxy
	// assembling WebSocket-over-HTTP events) may be asked to take, not
	// our memory: 16 MiB, well above the 1 MB messages applications send.
	DefaultWSMaxMessage  = 16 << 20
	DefaultStreamTimeout = 1800 * time.Second
	DefaultHeaderTimeout = 30 * time.Second
)

func (c *Config) setDefaults() {
	if c.ID == "" {
		c.ID = "condure"
	}
	if c.BufferSize == 0 {
		c.BufferSize = DefaultBufferSize
	}
	if c.MaxConn == 0 {
		c.MaxConn = DefaultMaxConn
	}
	if c.WSMaxMessage == 0 {
		c.WSMaxMessage = DefaultWSMaxMessage
	}
	if c.MessagesMax == 0 {
		c.MessagesMax = DefaultMessagesMax
	}
	if c.StreamTimeout == 0 {
		c.StreamTimeout = DefaultStreamTimeout
	}
	if c.HeaderTimeout == 0 {
		c.HeaderTimeout = DefaultHeaderTimeout
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = 45 * time.Second
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 60 * time.Second
	}
	if c.Sweep == 0 {
		c.Sweep = time.Second
	}
}

// Validate checks the config in one place, before anything opens.
func (c *Config) Validate() error {
	c.setDefaults()
	if strings.ContainsAny(c.ID, " \x00") {
		return fmt.Errorf("%w: --id %q: must not contain spaces", ErrConfig, c.ID)
	}
	if len(c.ZClient) == 0 {
		return fmt.Errorf("%w: --zclient-stream is required", ErrConfig)
	}
	for _, z := range c.ZClient {
		if _, _, _, err := Specs(z); err != nil {
			return err
		}
	}
	if c.BufferSize < 1024 {
		return fmt.Errorf("%w: --buffer-size %d: at least 1024", ErrConfig, c.BufferSize)
	}
	if c.MessagesMax < 1 {
		return fmt.Errorf("%w: --messages-max %d: at least 1", ErrConfig, c.MessagesMax)
	}
	if c.MaxConn < 1 {
		return fmt.Errorf("%w: --stream-maxconn %d: at least 1", ErrConfig, c.MaxConn)
	}
	if len(c.Listen) == 0 {
		return fmt.Errorf("%w: no --listen address", ErrNoListener)
	}
	return nil
}

// Specs expands a --zclient-stream base into condure's three endpoints:
// ipc ⇒ <base>-out (PUSH), <base>-out-stream (ROUTER), <base>-in (SUB);
// tcp host:N ⇒ N, N+1, N+2.
func Specs(base string) (out, outStream, in string, err error) {
	tr, addr, err := zmq.SplitSpec(base)
	if err != nil {
		return "", "", "", fmt.Errorf("%w: --zclient-stream %q: %v", ErrConfig, base, err)
	}
	if tr != "tcp" {
		return base + "-out", base + "-out-stream", base + "-in", nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", "", fmt.Errorf("%w: --zclient-stream %q: %v", ErrConfig, base, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65533 {
		return "", "", "", fmt.Errorf("%w: --zclient-stream %q: %q is not a port", ErrConfig, base, port)
	}
	f := func(p int) string { return "tcp://" + net.JoinHostPort(host, strconv.Itoa(p)) }
	return f(n), f(n + 1), f(n + 2), nil
}
