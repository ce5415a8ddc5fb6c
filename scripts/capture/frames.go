package main

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/pushpin-go/pushpin/proto/tnetstring"
	"github.com/zeromq/goczmq"
)

// errTimeout reports that no message arrived in time.
var errTimeout = errors.New("timed out waiting for a message")

// od is a tnetstring dict that keeps its key order, so the frames we send
// look like Pushpin's (from, id, seq first) rather than sorted.
type od []any

func (d od) AppendTNetString(dst []byte) ([]byte, error) {
	return tnetstring.AppendContainer(dst, tnetstring.TagDict, func(b []byte) ([]byte, error) {
		var err error
		for i := 0; i+1 < len(d); i += 2 {
			k, ok := d[i].(string)
			if !ok {
				return b, fmt.Errorf("od key %v is not a string", d[i])
			}
			b = tnetstring.AppendString(b, k)
			if b, err = tnetstring.Append(b, d[i+1]); err != nil {
				return b, err
			}
		}
		return b, nil
	})
}

// zhttpFrame encodes fields as a "T"-prefixed zhttp payload, optionally
// preceded by "<prefix> " for PUB sockets.
func zhttpFrame(prefix string, fields od) []byte {
	var b []byte
	if prefix != "" {
		b = append(b, prefix...)
		b = append(b, ' ')
	}
	b = append(b, 'T')
	b, err := fields.AppendTNetString(b)
	if err != nil {
		panic(fmt.Sprintf("encoding %v: %v", fields, err)) // our own literals; a bug, not input
	}
	return b
}

// packet is a decoded zhttp payload together with its raw frame.
type packet struct {
	raw    []byte // exactly as received (PUB frames include the "<id> " prefix)
	fields map[string]any
}

func (p packet) str(k string) string {
	if b, ok := p.fields[k].([]byte); ok {
		return string(b)
	}
	return ""
}

func (p packet) has(k string) bool { _, ok := p.fields[k]; return ok }

// kind names a packet for file names and logs.
func (p packet) kind() string {
	switch {
	case p.has("type"):
		return p.str("type")
	case p.has("method") || (p.has("uri") && !p.has("code")):
		return "request"
	case p.has("code"):
		return "response"
	default:
		return "data"
	}
}

// decodePacket decodes a zhttp frame; pub says it carries a "<id> " prefix.
func decodePacket(raw []byte, pub bool) (packet, error) {
	payload := raw
	if pub {
		i := bytes.IndexByte(raw, ' ')
		if i < 0 {
			return packet{}, fmt.Errorf("PUB frame %q lacks the address prefix", trunc(raw))
		}
		payload = raw[i+1:]
	}
	if len(payload) == 0 || payload[0] != 'T' {
		return packet{}, fmt.Errorf("frame %q lacks the T prefix", trunc(raw))
	}
	v, err := tnetstring.Decode(payload[1:])
	if err != nil {
		return packet{}, fmt.Errorf("decoding %q: %w", trunc(raw), err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return packet{}, fmt.Errorf("frame %q is not a dict", trunc(raw))
	}
	return packet{raw: raw, fields: m}, nil
}

func trunc(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

// recvMsg reads one multipart message frame by frame, polling with the
// socket's short receive timeout until d has passed.
func recvMsg(s *goczmq.Sock, d time.Duration) ([][]byte, error) {
	deadline := time.Now().Add(d)
	for {
		f, more, err := s.RecvFrame()
		if err == nil {
			msg := [][]byte{f}
			for more != 0 {
				if f, more, err = s.RecvFrame(); err != nil {
					return nil, fmt.Errorf("reading continuation frame: %w", err)
				}
				msg = append(msg, f)
			}
			return msg, nil
		}
		if time.Now().After(deadline) {
			return nil, errTimeout
		}
	}
}

func sendMsg(s *goczmq.Sock, frames ...[]byte) error {
	for i, f := range frames {
		flag := goczmq.FlagNone
		if i < len(frames)-1 {
			flag = goczmq.FlagMore
		}
		if err := s.SendFrame(f, flag); err != nil {
			return fmt.Errorf("sending frame %d: %w", i, err)
		}
	}
	return nil
}

// newSock creates a connected socket with short timeouts and no linger.
func newSock(typ int, endpoint, identity string) (*goczmq.Sock, error) {
	s := goczmq.NewSock(typ)
	s.SetLinger(0)
	s.SetRcvtimeo(100)
	s.SetSndtimeo(2000)
	if identity != "" {
		s.SetIdentity(identity)
	}
	if typ == goczmq.Router {
		s.SetRouterMandatory(1)
	}
	if err := s.Connect(endpoint); err != nil {
		s.Destroy()
		return nil, fmt.Errorf("connecting %s: %w", endpoint, err)
	}
	return s, nil
}

// recorder writes frames as <prefix>-<case>-<nn>-<dir>-<kind>.bin, numbering
// them per case in exchange order.
type recorder struct {
	dir, prefix string
	counts      map[string]int
	files       []string
}

func newRecorder(dir, prefix string) *recorder {
	return &recorder{dir: dir, prefix: prefix, counts: map[string]int{}}
}

func (r *recorder) save(tc, direction string, p packet) error {
	n := r.counts[tc]
	r.counts[tc]++
	name := fmt.Sprintf("%s-%s-%02d-%s-%s.bin", r.prefix, tc, n, direction, p.kind())
	log.Printf("%-55s %s", name, trunc(p.raw))
	r.files = append(r.files, name)
	if err := os.WriteFile(filepath.Join(r.dir, name), p.raw, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}
