package zhttp

import (
	"bytes"
	"errors"
	"fmt"
	"unsafe"

	"github.com/pushpin-go/pushpin/proto/tnetstring"
)

// Errors callers may test for.
var (
	ErrNoPrefix  = errors.New("zhttp: message does not start with 'T'")
	ErrBadPacket = errors.New("zhttp: invalid packet")
	ErrNoID      = errors.New("zhttp: packet has no id")
)

// Parse decodes a tnetstring packet (without the 'T' prefix). Strings are
// copied out of b (into one allocation); Body, UserData and Passthrough
// alias b, so callers must not reuse b while the packet is in use.
func Parse(b []byte) (*Packet, error) {
	p := &Packet{}
	if err := p.Unmarshal(b); err != nil {
		return nil, err
	}
	return p, nil
}

// ParseMessage decodes a zhttp message as it travels on PUSH/ROUTER sockets:
// 'T' followed by a tnetstring.
func ParseMessage(msg []byte) (*Packet, error) {
	if len(msg) == 0 || msg[0] != 'T' {
		return nil, ErrNoPrefix
	}
	return Parse(msg[1:])
}

// SplitPub splits a PUB/SUB frame "<receiver> T<tnetstring>" into the
// receiver id and the message.
func SplitPub(frame []byte) (receiver, msg []byte, err error) {
	i := bytes.IndexByte(frame, ' ')
	if i < 0 {
		return nil, nil, fmt.Errorf("%w: no receiver prefix", ErrBadPacket)
	}
	return frame[:i], frame[i+1:], nil
}

func bad(field string, err error) error {
	return fmt.Errorf("%w: field %q: %v", ErrBadPacket, field, err)
}

// decoder copies a packet's string fields into one arena sized up front,
// so a packet costs one allocation for all its strings (not one per
// field and header) and never aliases the caller's buffer.
type decoder struct {
	arena []byte
}

func (d *decoder) str(e tnetstring.Elem, field string) (string, error) {
	b, err := e.Bytes()
	if err != nil {
		return "", bad(field, err)
	}
	return d.intern(b), nil
}

// intern copies b into the arena, which never grows past the capacity
// it was made with, so earlier strings stay valid.
func (d *decoder) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(d.arena)+len(b) > cap(d.arena) {
		return string(b) // sizing missed (cannot happen for valid input): plain copy
	}
	start := len(d.arena)
	d.arena = append(d.arena, b...)
	return unsafe.String(&d.arena[start], len(b))
}

func num(e tnetstring.Elem, field string) (int64, error) {
	v, err := e.Int()
	if err != nil {
		return 0, bad(field, err)
	}
	return v, nil
}

func flag(e tnetstring.Elem, field string) (bool, error) {
	v, err := e.Bool()
	if err != nil {
		return false, bad(field, err)
	}
	return v, nil
}

// count returns the number of items of a list element (0 if not a list).
func count(e tnetstring.Elem) int {
	n := 0
	if e.Tag != tnetstring.TagList {
		return 0
	}
	for b := e.Data; len(b) > 0; n++ {
		var err error
		if _, b, err = tnetstring.Parse(b); err != nil {
			break
		}
	}
	return n
}

// Unmarshal decodes b (without the 'T' prefix) into p, which is reset
// first. Body, UserData and Passthrough alias b (see Parse).
func (p *Packet) Unmarshal(b []byte) error {
	*p = Packet{}
	top, _, err := tnetstring.Parse(b)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadPacket, err)
	}
	if top.Tag != tnetstring.TagDict {
		return fmt.Errorf("%w: not a dict", ErrBadPacket)
	}
	// First pass: the arena needs at most the payloads of the string
	// fields (a list's payload bounds its strings), and the lists are
	// allocated at their final length.
	arena, nHeaders, nIDs := 0, 0, 0
	if err := top.Dict(func(k []byte, v tnetstring.Elem) error {
		switch string(k) {
		case "from", "method", "uri", "peer-address", "connect-host", "content-type", "reason", "condition":
			arena += len(v.Data)
		case "headers":
			arena += len(v.Data)
			nHeaders = count(v)
		case "id":
			arena += len(v.Data)
			nIDs = count(v)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("%w: %v", ErrBadPacket, err)
	}
	var d decoder
	if arena > 0 {
		d.arena = make([]byte, 0, arena)
	}
	if nHeaders > 0 {
		p.Headers = make(Headers, 0, nHeaders)
	}
	if nIDs > 0 {
		p.IDs = make([]IDSeq, 0, nIDs)
	}
	hasID := false
	for rest := top.Data; len(rest) > 0; {
		k, after, err := tnetstring.Parse(rest)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadPacket, err)
		}
		v, next, err := tnetstring.Parse(after)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadPacket, err)
		}
		if k.Tag != tnetstring.TagString {
			return fmt.Errorf("%w: %v", ErrBadPacket, tnetstring.ErrKey)
		}
		// The value's own encoding, for the fields echoed verbatim.
		raw := after[: len(after)-len(next) : len(after)-len(next)]
		rest = next
		if string(k.Data) == "id" {
			hasID = true
		}
		if err := p.field(&d, k.Data, v, raw); err != nil {
			if errors.Is(err, ErrBadPacket) {
				return err
			}
			return fmt.Errorf("%w: %v", ErrBadPacket, err)
		}
	}
	if !hasID {
		return ErrNoID
	}
	return nil
}

func (p *Packet) field(d *decoder, k []byte, v tnetstring.Elem, raw []byte) error {
	var err error
	switch string(k) {
	case "from":
		p.From, err = d.str(v, "from")
	case "id":
		if v.Tag != tnetstring.TagList {
			p.ID, err = d.str(v, "id")
			break
		}
		err = v.List(func(it tnetstring.Elem) error {
			var e IDSeq
			hasEntryID := false
			if err := it.Dict(func(k2 []byte, v2 tnetstring.Elem) error {
				var err error
				switch string(k2) {
				case "id":
					hasEntryID = true
					e.ID, err = d.str(v2, "id")
				case "seq":
					e.Seq, err = num(v2, "seq")
				}
				return err
			}); err != nil {
				return bad("id", err)
			}
			if !hasEntryID {
				return bad("id", errors.New("list entry without id"))
			}
			p.IDs = append(p.IDs, e)
			return nil
		})
	case "seq":
		p.Seq, err = num(v, "seq")
		p.HasSeq = true
	case "type":
		var t []byte
		if t, err = v.Bytes(); err != nil {
			err = bad("type", err)
		} else {
			var ok bool
			if p.Type, ok = validType(t); !ok {
				err = bad("type", fmt.Errorf("unknown type %q", t))
			}
		}
	case "ext":
		err = p.Ext.unmarshal(v)
	case "user-data":
		p.UserData = raw
	case "method":
		p.Method, err = d.str(v, "method")
	case "uri":
		p.URI, err = d.str(v, "uri")
	case "headers":
		p.HasHeaders = true
		err = v.List(func(h tnetstring.Elem) error {
			var pair [2]string
			n := 0
			if err := h.List(func(x tnetstring.Elem) error {
				if n >= 2 {
					return errors.New("header has more than 2 items")
				}
				s, err := x.Bytes()
				if err != nil {
					return err
				}
				pair[n] = d.intern(s)
				n++
				return nil
			}); err != nil {
				return bad("headers", err)
			}
			if n != 2 {
				return bad("headers", errors.New("header is not a [name, value] pair"))
			}
			p.Headers = append(p.Headers, Header{pair[0], pair[1]})
			return nil
		})
		if err != nil && !errors.Is(err, ErrBadPacket) {
			err = bad("headers", err)
		}
	case "body":
		p.Body, err = v.Bytes()
		if err != nil {
			err = bad("body", err)
		}
	case "more":
		p.More, err = flag(v, "more")
	case "stream":
		p.Stream, err = flag(v, "stream")
	case "credits":
		p.Credits, err = num(v, "credits")
		p.HasCredits = true
	case "max-size":
		p.MaxSize, err = num(v, "max-size")
	case "timeout":
		p.Timeout, err = num(v, "timeout")
	case "peer-address":
		p.PeerAddress, err = d.str(v, "peer-address")
	case "peer-port":
		p.PeerPort, err = num(v, "peer-port")
	case "connect-host":
		p.ConnectHost, err = d.str(v, "connect-host")
	case "connect-port":
		p.ConnectPort, err = num(v, "connect-port")
	case "ignore-policies":
		p.IgnorePolicies, err = flag(v, "ignore-policies")
	case "trust-connect-host":
		p.TrustConnectHost, err = flag(v, "trust-connect-host")
	case "ignore-tls-errors":
		p.IgnoreTLSErrors, err = flag(v, "ignore-tls-errors")
	case "follow-redirects":
		p.FollowRedirects, err = flag(v, "follow-redirects")
	case "passthrough":
		p.Passthrough = raw
	case "content-type":
		p.ContentType, err = d.str(v, "content-type")
	case "code":
		p.Code, err = num(v, "code")
		p.HasCode = true
	case "reason":
		p.Reason, err = d.str(v, "reason")
	case "condition":
		p.Condition, err = d.str(v, "condition")
	}
	return err
}

func (e *Ext) unmarshal(v tnetstring.Elem) error {
	return v.Dict(func(k []byte, x tnetstring.Elem) error {
		switch string(k) {
		case "multi":
			b, err := x.Bool()
			if err != nil {
				return bad("ext.multi", err)
			}
			e.Multi = b
		case "multi-data":
			b, err := x.Bool()
			if err != nil {
				return bad("ext.multi-data", err)
			}
			e.MultiData = b
		case "quiet":
			b, err := x.Bool()
			if err != nil {
				return bad("ext.quiet", err)
			}
			e.Quiet = b
		default:
			if e.Other == nil {
				e.Other = map[string][]byte{}
			}
			e.Other[string(k)], _ = tnetstring.Append(nil, x)
		}
		return nil
	})
}
