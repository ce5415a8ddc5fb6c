// Package zhttp models zhttp/zws packets (HTTP and WebSocket sessions carried
// over ZeroMQ) and their tnetstring encoding, byte-compatible with Pushpin
// 1.36, condure and zurl.
package zhttp

import (
	"strings"
)

// Type is a packet's `type` field; the empty Type is a data packet.
type Type string

// Packet types (zhttp.md §6).
const (
	Data           Type = ""
	Error          Type = "error"
	Credit         Type = "credit"
	KeepAlive      Type = "keep-alive"
	Cancel         Type = "cancel"
	HandoffStart   Type = "handoff-start"
	HandoffProceed Type = "handoff-proceed"
	Close          Type = "close"
	Ping           Type = "ping"
	Pong           Type = "pong"
)

// validType returns the constant for a wire type (no allocation).
func validType(t []byte) (Type, bool) {
	for _, c := range [...]Type{KeepAlive, Credit, Cancel, Error, HandoffStart, HandoffProceed, Close, Ping, Pong} {
		if string(t) == string(c) {
			return c, true
		}
	}
	return "", false
}

// Header is one HTTP header line; order and duplicates are preserved.
type Header struct {
	Name, Value string
}

// Headers is an ordered header list.
type Headers []Header

// Get returns the first value of name (case-insensitive).
func (h Headers) Get(name string) string {
	for _, x := range h {
		if strings.EqualFold(x.Name, name) {
			return x.Value
		}
	}
	return ""
}

// Has reports whether name is present.
func (h Headers) Has(name string) bool {
	for _, x := range h {
		if strings.EqualFold(x.Name, name) {
			return true
		}
	}
	return false
}

// Values returns every value of name, in order.
func (h Headers) Values(name string) []string {
	var out []string
	for _, x := range h {
		if strings.EqualFold(x.Name, name) {
			out = append(out, x.Value)
		}
	}
	return out
}

// Del removes every occurrence of name, in place.
func (h Headers) Del(name string) Headers {
	out := h[:0]
	for _, x := range h {
		if !strings.EqualFold(x.Name, name) {
			out = append(out, x)
		}
	}
	return out
}

// Set replaces every occurrence of name with one line.
func (h Headers) Set(name, value string) Headers {
	return append(h.Del(name), Header{name, value})
}

// Clone returns a copy that can be modified independently.
func (h Headers) Clone() Headers {
	if h == nil {
		return nil
	}
	return append(Headers(nil), h...)
}

// IDSeq is one entry of a list-form `id` (a packet batched for many sessions).
type IDSeq struct {
	ID  string
	Seq int64
}

// Ext is the `ext` dict. Multi says the sender accepts list-form ids.
// Unknown keys are kept raw so that capabilities added later (negotiated
// between our own processes) survive a hop through older code.
type Ext struct {
	Multi bool
	// MultiData ("multi-data", our extension) says the sender also accepts
	// list-form ids on data packets: one packet whose body goes to every
	// listed session, each with its own seq. Our connection manager sets
	// it; condure does not, so it keeps getting one packet per session.
	MultiData bool
	Quiet     bool
	// Other holds unknown keys: encoded tnetstring values keyed by name.
	Other map[string][]byte
}

func (e *Ext) empty() bool { return !e.Multi && !e.MultiData && !e.Quiet && len(e.Other) == 0 }

// Packet is one zhttp/zws packet, in either direction. Fields that are
// absent on the wire are zero; the Has* flags distinguish absent from zero
// where Pushpin does.
type Packet struct {
	From string
	ID   string
	// IDs is the list form of `id`; when set, ID is empty and Seq unused.
	IDs    []IDSeq
	Seq    int64
	HasSeq bool
	Type   Type
	Ext    Ext
	// UserData is the encoded tnetstring value of `user-data`, echoed verbatim.
	UserData []byte

	// Request fields.
	Method           string
	URI              string
	Headers          Headers
	HasHeaders       bool
	Body             []byte
	More             bool
	Stream           bool
	Credits          int64
	HasCredits       bool
	MaxSize          int64
	Timeout          int64
	PeerAddress      string
	PeerPort         int64
	ConnectHost      string
	ConnectPort      int64
	IgnorePolicies   bool
	TrustConnectHost bool
	IgnoreTLSErrors  bool
	FollowRedirects  bool
	// Passthrough is the encoded tnetstring value of `passthrough`.
	Passthrough []byte

	// Both directions.
	ContentType string
	Code        int64
	HasCode     bool
	Reason      string
	Condition   string
}

// IsWebSocket reports whether a request packet opens a zws session.
func (p *Packet) IsWebSocket() bool {
	return strings.HasPrefix(p.URI, "ws://") || strings.HasPrefix(p.URI, "wss://")
}
