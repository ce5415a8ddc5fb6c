package zhttp

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/pushpin-go/pushpin/proto/tnetstring"
)

// Errors callers may test for.
var (
	ErrNoPrefix  = errors.New("zhttp: message does not start with 'T'")
	ErrBadPacket = errors.New("zhttp: invalid packet")
	ErrNoID      = errors.New("zhttp: packet has no id")
)

// Parse decodes a tnetstring packet (without the 'T' prefix). Strings are
// copied out of b; Body aliases b, so callers must not reuse b while the
// packet's body is in use.
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

func str(e tnetstring.Elem, field string) (string, error) {
	b, err := e.Bytes()
	if err != nil {
		return "", bad(field, err)
	}
	return string(b), nil
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

func raw(e tnetstring.Elem) []byte {
	out, _ := tnetstring.Append(nil, e)
	return out
}

// Unmarshal decodes b (without the 'T' prefix) into p, which is reset first.
func (p *Packet) Unmarshal(b []byte) error {
	*p = Packet{}
	top, _, err := tnetstring.Parse(b)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadPacket, err)
	}
	if top.Tag != tnetstring.TagDict {
		return fmt.Errorf("%w: not a dict", ErrBadPacket)
	}
	hasID := false
	err = top.Dict(func(k []byte, v tnetstring.Elem) error {
		var err error
		switch string(k) {
		case "from":
			p.From, err = str(v, "from")
		case "id":
			hasID = true
			if v.Tag == tnetstring.TagList {
				err = v.List(func(it tnetstring.Elem) error {
					var e IDSeq
					hasEntryID := false
					if err := it.Dict(func(k2 []byte, v2 tnetstring.Elem) error {
						var err error
						switch string(k2) {
						case "id":
							hasEntryID = true
							e.ID, err = str(v2, "id")
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
			} else {
				p.ID, err = str(v, "id")
			}
		case "seq":
			p.Seq, err = num(v, "seq")
			p.HasSeq = true
		case "type":
			var t string
			if t, err = str(v, "type"); err == nil {
				var ok bool
				if p.Type, ok = validType(t); !ok {
					err = bad("type", fmt.Errorf("unknown type %q", t))
				}
			}
		case "ext":
			err = p.Ext.unmarshal(v)
		case "user-data":
			p.UserData = raw(v)
		case "method":
			p.Method, err = str(v, "method")
		case "uri":
			p.URI, err = str(v, "uri")
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
					pair[n] = string(s)
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
			p.PeerAddress, err = str(v, "peer-address")
		case "peer-port":
			p.PeerPort, err = num(v, "peer-port")
		case "connect-host":
			p.ConnectHost, err = str(v, "connect-host")
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
			p.Passthrough = raw(v)
		case "content-type":
			p.ContentType, err = str(v, "content-type")
		case "code":
			p.Code, err = num(v, "code")
			p.HasCode = true
		case "reason":
			p.Reason, err = str(v, "reason")
		case "condition":
			p.Condition, err = str(v, "condition")
		}
		return err
	})
	if err != nil {
		if errors.Is(err, ErrBadPacket) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrBadPacket, err)
	}
	if !hasID {
		return ErrNoID
	}
	return nil
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
			e.Other[string(k)] = raw(x)
		}
		return nil
	})
}
