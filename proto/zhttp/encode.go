package zhttp

import (
	"sort"

	ts "github.com/pushpin-go/pushpin/proto/tnetstring"
)

// Append appends p's tnetstring encoding (no 'T' prefix) to dst.
// Encoding writes nested containers in place: one pass, no temporaries.
func (p *Packet) Append(dst []byte) []byte {
	out, _ := ts.AppendContainer(dst, ts.TagDict, p.appendFields)
	return out
}

// AppendMessage appends "T" + the encoding, the form used on PUSH and
// ROUTER sockets.
func (p *Packet) AppendMessage(dst []byte) []byte {
	return p.Append(append(dst, 'T'))
}

// AppendPub appends "<receiver> T<tnetstring>", the single-frame form used
// on PUB sockets toward a client that subscribed to "<receiver> ".
func (p *Packet) AppendPub(dst []byte, receiver string) []byte {
	dst = append(dst, receiver...)
	dst = append(dst, ' ', 'T')
	return p.Append(dst)
}

func kv(b []byte, k string) []byte { return ts.AppendString(b, k) }

func (p *Packet) appendFields(b []byte) ([]byte, error) {
	if p.From != "" {
		b = ts.AppendString(kv(b, "from"), p.From)
	}
	if len(p.IDs) > 0 {
		b = kv(b, "id")
		b, _ = ts.AppendContainer(b, ts.TagList, func(b []byte) ([]byte, error) {
			for _, e := range p.IDs {
				b, _ = ts.AppendContainer(b, ts.TagDict, func(b []byte) ([]byte, error) {
					b = ts.AppendString(kv(b, "id"), e.ID)
					return ts.AppendInt(kv(b, "seq"), e.Seq), nil
				})
			}
			return b, nil
		})
	} else {
		b = ts.AppendString(kv(b, "id"), p.ID)
	}
	if p.HasSeq {
		b = ts.AppendInt(kv(b, "seq"), p.Seq)
	}
	if !p.Ext.empty() {
		b = kv(b, "ext")
		b, _ = ts.AppendContainer(b, ts.TagDict, func(b []byte) ([]byte, error) {
			if p.Ext.Multi {
				b = ts.AppendBool(kv(b, "multi"), true)
			}
			if p.Ext.MultiData {
				b = ts.AppendBool(kv(b, "multi-data"), true)
			}
			if p.Ext.Quiet {
				b = ts.AppendBool(kv(b, "quiet"), true)
			}
			if len(p.Ext.Other) > 0 {
				keys := make([]string, 0, len(p.Ext.Other))
				for k := range p.Ext.Other {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					b = append(kv(b, k), p.Ext.Other[k]...)
				}
			}
			return b, nil
		})
	}
	if p.Type != Data {
		b = ts.AppendString(kv(b, "type"), string(p.Type))
	}
	if p.UserData != nil {
		b = append(kv(b, "user-data"), p.UserData...)
	}
	if p.Method != "" {
		b = ts.AppendString(kv(b, "method"), p.Method)
	}
	if p.URI != "" {
		b = ts.AppendString(kv(b, "uri"), p.URI)
	}
	if p.HasCode {
		b = ts.AppendInt(kv(b, "code"), p.Code)
	}
	if p.Reason != "" || (p.HasCode && p.Type == Data) {
		b = ts.AppendString(kv(b, "reason"), p.Reason)
	}
	if p.HasHeaders || len(p.Headers) > 0 {
		b = kv(b, "headers")
		b, _ = ts.AppendContainer(b, ts.TagList, func(b []byte) ([]byte, error) {
			for _, h := range p.Headers {
				b, _ = ts.AppendContainer(b, ts.TagList, func(b []byte) ([]byte, error) {
					return ts.AppendString(ts.AppendString(b, h.Name), h.Value), nil
				})
			}
			return b, nil
		})
	}
	if p.ContentType != "" {
		b = ts.AppendString(kv(b, "content-type"), p.ContentType)
	}
	if p.Body != nil {
		b = ts.AppendBytes(kv(b, "body"), p.Body)
	}
	if p.HasCredits {
		b = ts.AppendInt(kv(b, "credits"), p.Credits)
	}
	if p.More {
		b = ts.AppendBool(kv(b, "more"), true)
	}
	if p.Stream {
		b = ts.AppendBool(kv(b, "stream"), true)
	}
	if p.MaxSize != 0 {
		b = ts.AppendInt(kv(b, "max-size"), p.MaxSize)
	}
	if p.Timeout != 0 {
		b = ts.AppendInt(kv(b, "timeout"), p.Timeout)
	}
	if p.PeerAddress != "" {
		b = ts.AppendString(kv(b, "peer-address"), p.PeerAddress)
	}
	if p.PeerPort != 0 {
		b = ts.AppendInt(kv(b, "peer-port"), p.PeerPort)
	}
	if p.ConnectHost != "" {
		b = ts.AppendString(kv(b, "connect-host"), p.ConnectHost)
	}
	if p.ConnectPort != 0 {
		b = ts.AppendInt(kv(b, "connect-port"), p.ConnectPort)
	}
	if p.IgnorePolicies {
		b = ts.AppendBool(kv(b, "ignore-policies"), true)
	}
	if p.TrustConnectHost {
		b = ts.AppendBool(kv(b, "trust-connect-host"), true)
	}
	if p.IgnoreTLSErrors {
		b = ts.AppendBool(kv(b, "ignore-tls-errors"), true)
	}
	if p.FollowRedirects {
		b = ts.AppendBool(kv(b, "follow-redirects"), true)
	}
	if p.Passthrough != nil {
		b = append(kv(b, "passthrough"), p.Passthrough...)
	}
	if p.Condition != "" {
		b = ts.AppendString(kv(b, "condition"), p.Condition)
	}
	return b, nil
}
