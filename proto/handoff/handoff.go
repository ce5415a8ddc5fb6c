// Package handoff encodes the messages that move a held HTTP session between
// the proxy and the handler (see README.md in this directory).
package handoff

import (
	"errors"
	"fmt"

	ts "github.com/pushpin-go/pushpin/proto/tnetstring"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// ErrBadMessage is returned for a message that does not decode.
var ErrBadMessage = errors.New("handoff: invalid message")

// Session is the zhttp state of one client session at the moment of handoff.
type Session struct {
	Sender      string // client instance id (PUB receiver), e.g. "condure"
	ID          string // session id
	InSeq       int64  // next seq expected from the client
	OutSeq      int64  // next seq to send to the client
	OutCredits  int64  // response body bytes the client can still take
	Multi       bool   // the client announced ext.multi
	MultiData   bool   // the client announced ext.multi-data (list-form ids on data packets)
	PeerAddress string
	HTTPS       bool
	UserData    []byte // encoded tnetstring value, nil if none
}

// HTTPData is a request or response: method/uri for requests, code/reason for responses.
type HTTPData struct {
	Method  string
	URI     string
	Code    int64
	Reason  string
	Headers zhttp.Headers
	Body    []byte
}

// Accept hands held sessions from the proxy to the handler.
type Accept struct {
	Sessions        []Session
	Request         HTTPData // as sent to the backend
	Response        HTTPData // the backend's GRIP response
	ResponseSent    bool
	Route           string
	ChannelPrefix   string
	Channels        []string // implicit subscriptions (target sub=)
	Trusted         bool
	Debug           bool
	AutoCrossOrigin bool
}

// Retry gives sessions back to the proxy, which re-requests the backend.
type Retry struct {
	Sessions []Session
	Request  HTTPData
	LastIDs  map[string]string // channel → last id, sent as Grip-Last
	Route    string
}

func appendSessions(b []byte, ss []Session) []byte {
	b = ts.AppendString(b, "requests")
	b, _ = ts.AppendContainer(b, ts.TagList, func(b []byte) ([]byte, error) {
		for _, s := range ss {
			b, _ = ts.AppendContainer(b, ts.TagDict, func(b []byte) ([]byte, error) {
				b = ts.AppendString(b, "rid")
				b, _ = ts.AppendContainer(b, ts.TagDict, func(b []byte) ([]byte, error) {
					b = ts.AppendString(ts.AppendString(b, "sender"), s.Sender)
					return ts.AppendString(ts.AppendString(b, "id"), s.ID), nil
				})
				b = ts.AppendInt(ts.AppendString(b, "in-seq"), s.InSeq)
				b = ts.AppendInt(ts.AppendString(b, "out-seq"), s.OutSeq)
				b = ts.AppendInt(ts.AppendString(b, "out-credits"), s.OutCredits)
				b = ts.AppendBool(ts.AppendString(b, "multi"), s.Multi)
				if s.MultiData {
					b = ts.AppendBool(ts.AppendString(b, "multi-data"), true)
				}
				b = ts.AppendString(ts.AppendString(b, "peer-address"), s.PeerAddress)
				b = ts.AppendBool(ts.AppendString(b, "https"), s.HTTPS)
				if s.UserData != nil {
					b = append(ts.AppendString(b, "user-data"), s.UserData...)
				}
				return b, nil
			})
		}
		return b, nil
	})
	return b
}

func appendHTTP(b []byte, key string, d *HTTPData, request bool) []byte {
	b = ts.AppendString(b, key)
	b, _ = ts.AppendContainer(b, ts.TagDict, func(b []byte) ([]byte, error) {
		if request {
			b = ts.AppendString(ts.AppendString(b, "method"), d.Method)
			b = ts.AppendString(ts.AppendString(b, "uri"), d.URI)
		} else {
			b = ts.AppendInt(ts.AppendString(b, "code"), d.Code)
			b = ts.AppendString(ts.AppendString(b, "reason"), d.Reason)
		}
		b = ts.AppendString(b, "headers")
		b, _ = ts.AppendContainer(b, ts.TagList, func(b []byte) ([]byte, error) {
			for _, h := range d.Headers {
				b, _ = ts.AppendContainer(b, ts.TagList, func(b []byte) ([]byte, error) {
					return ts.AppendString(ts.AppendString(b, h.Name), h.Value), nil
				})
			}
			return b, nil
		})
		return ts.AppendBytes(ts.AppendString(b, "body"), d.Body), nil
	})
	return b
}

// AppendMessage appends 'T' + the encoded Accept.
func (a *Accept) AppendMessage(dst []byte) []byte {
	dst = append(dst, 'T')
	dst, _ = ts.AppendContainer(dst, ts.TagDict, func(b []byte) ([]byte, error) {
		b = appendSessions(b, a.Sessions)
		b = appendHTTP(b, "request-data", &a.Request, true)
		b = appendHTTP(b, "response", &a.Response, false)
		b = ts.AppendBool(ts.AppendString(b, "response-sent"), a.ResponseSent)
		b = ts.AppendString(ts.AppendString(b, "route"), a.Route)
		b = ts.AppendString(ts.AppendString(b, "channel-prefix"), a.ChannelPrefix)
		b, _ = ts.Append(ts.AppendString(b, "channels"), a.Channels)
		b = ts.AppendBool(ts.AppendString(b, "trusted"), a.Trusted)
		b = ts.AppendBool(ts.AppendString(b, "debug"), a.Debug)
		b = ts.AppendBool(ts.AppendString(b, "auto-cross-origin"), a.AutoCrossOrigin)
		return b, nil
	})
	return dst
}

// AppendMessage appends 'T' + the encoded Retry.
func (r *Retry) AppendMessage(dst []byte) []byte {
	dst = append(dst, 'T')
	dst, _ = ts.AppendContainer(dst, ts.TagDict, func(b []byte) ([]byte, error) {
		b = appendSessions(b, r.Sessions)
		b = appendHTTP(b, "request-data", &r.Request, true)
		b = ts.AppendString(b, "inspect")
		b, _ = ts.AppendContainer(b, ts.TagDict, func(b []byte) ([]byte, error) {
			b = ts.AppendString(b, "last-ids")
			return ts.AppendContainer(b, ts.TagDict, func(b []byte) ([]byte, error) {
				for k, v := range r.LastIDs {
					b = ts.AppendString(ts.AppendString(b, k), v)
				}
				return b, nil
			})
		})
		return ts.AppendString(ts.AppendString(b, "route"), r.Route), nil
	})
	return dst
}

func body(msg []byte) (ts.Elem, error) {
	if len(msg) == 0 || msg[0] != 'T' {
		return ts.Elem{}, fmt.Errorf("%w: no 'T' prefix", ErrBadMessage)
	}
	e, _, err := ts.Parse(msg[1:])
	if err != nil {
		return ts.Elem{}, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	return e, nil
}

// ParseAccept decodes an Accept message ('T' + tnetstring).
func ParseAccept(msg []byte) (*Accept, error) {
	e, err := body(msg)
	if err != nil {
		return nil, err
	}
	a := &Accept{}
	err = e.Dict(func(k []byte, v ts.Elem) error {
		var err error
		switch string(k) {
		case "requests":
			a.Sessions, err = parseSessions(v)
		case "request-data":
			err = parseHTTP(v, &a.Request)
		case "response":
			err = parseHTTP(v, &a.Response)
		case "response-sent":
			a.ResponseSent, err = v.Bool()
		case "route":
			a.Route, err = str(v)
		case "channel-prefix":
			a.ChannelPrefix, err = str(v)
		case "channels":
			err = v.List(func(x ts.Elem) error {
				s, err := str(x)
				a.Channels = append(a.Channels, s)
				return err
			})
		case "trusted":
			a.Trusted, err = v.Bool()
		case "debug":
			a.Debug, err = v.Bool()
		case "auto-cross-origin":
			a.AutoCrossOrigin, err = v.Bool()
		}
		if err != nil {
			return fmt.Errorf("field %q: %w", k, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	if len(a.Sessions) == 0 {
		return nil, fmt.Errorf("%w: no sessions", ErrBadMessage)
	}
	return a, nil
}

// ParseRetry decodes a Retry message ('T' + tnetstring).
func ParseRetry(msg []byte) (*Retry, error) {
	e, err := body(msg)
	if err != nil {
		return nil, err
	}
	r := &Retry{LastIDs: map[string]string{}}
	err = e.Dict(func(k []byte, v ts.Elem) error {
		var err error
		switch string(k) {
		case "requests":
			r.Sessions, err = parseSessions(v)
		case "request-data":
			err = parseHTTP(v, &r.Request)
		case "route":
			r.Route, err = str(v)
		case "inspect":
			err = v.Dict(func(k2 []byte, v2 ts.Elem) error {
				if string(k2) != "last-ids" {
					return nil
				}
				return v2.Dict(func(ch []byte, id ts.Elem) error {
					s, err := str(id)
					r.LastIDs[string(ch)] = s
					return err
				})
			})
		}
		if err != nil {
			return fmt.Errorf("field %q: %w", k, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	if len(r.Sessions) == 0 {
		return nil, fmt.Errorf("%w: no sessions", ErrBadMessage)
	}
	return r, nil
}

func str(e ts.Elem) (string, error) {
	b, err := e.Bytes()
	return string(b), err
}

func parseSessions(v ts.Elem) ([]Session, error) {
	var out []Session
	err := v.List(func(x ts.Elem) error {
		var s Session
		err := x.Dict(func(k []byte, v ts.Elem) error {
			var err error
			switch string(k) {
			case "rid":
				err = v.Dict(func(k2 []byte, v2 ts.Elem) error {
					var err error
					switch string(k2) {
					case "sender":
						s.Sender, err = str(v2)
					case "id":
						s.ID, err = str(v2)
					}
					return err
				})
			case "in-seq":
				s.InSeq, err = v.Int()
			case "out-seq":
				s.OutSeq, err = v.Int()
			case "out-credits":
				s.OutCredits, err = v.Int()
			case "multi":
				s.Multi, err = v.Bool()
			case "multi-data":
				s.MultiData, err = v.Bool()
			case "peer-address":
				s.PeerAddress, err = str(v)
			case "https":
				s.HTTPS, err = v.Bool()
			case "user-data":
				s.UserData, _ = ts.Append(nil, v)
			}
			return err
		})
		if err != nil {
			return err
		}
		if s.Sender == "" || s.ID == "" {
			return errors.New("session without rid")
		}
		out = append(out, s)
		return nil
	})
	return out, err
}

func parseHTTP(v ts.Elem, d *HTTPData) error {
	return v.Dict(func(k []byte, v ts.Elem) error {
		var err error
		switch string(k) {
		case "method":
			d.Method, err = str(v)
		case "uri":
			d.URI, err = str(v)
		case "code":
			d.Code, err = v.Int()
		case "reason":
			d.Reason, err = str(v)
		case "body":
			var b []byte
			b, err = v.Bytes()
			d.Body = append([]byte{}, b...)
		case "headers":
			err = v.List(func(h ts.Elem) error {
				var pair []string
				if err := h.List(func(x ts.Elem) error {
					s, err := str(x)
					pair = append(pair, s)
					return err
				}); err != nil {
					return err
				}
				if len(pair) != 2 {
					return errors.New("header is not a pair")
				}
				d.Headers = append(d.Headers, zhttp.Header{Name: pair[0], Value: pair[1]})
				return nil
			})
		}
		return err
	})
}
