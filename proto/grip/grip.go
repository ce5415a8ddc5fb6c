// Package grip implements the GRIP (Generic Realtime Intermediary Protocol)
// pieces that Pushpin's proxy and handler must agree on byte for byte:
// header-value syntax, the instruct carried by a backend response (header
// and application/grip-instruct JSON forms), Grip-Sig tokens, WebSocket
// control messages and the grip extension negotiation. It holds no process
// logic; see /work/shared/spec/grip.md for the behaviour it encodes.
package grip

import (
	"encoding/base64"
	"strings"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// Feature is the Grip-Feature request header value sent to backends
// (grip.md §1): only what is built, since a backend may rely on what is
// announced. Pushpin 1.36 sends "status, session, link:next,
// filter:skip-self, filter:skip-users, filter:require-sub, filter:build-id,
// filter:var-subst"; add each here once it works (session:
// Grip-Session-*/Grip-Last, link:next: next links, filter:*: publish
// filters).
const Feature = "status"

// InstructContentType selects the JSON instruct form (grip.md §5).
const InstructContentType = "application/grip-instruct"

// Defaults and limits applied by ParseResponse (grip.md §4).
const (
	DefaultTimeout          = 55  // Grip-Timeout default, seconds
	MinTimeout              = 5   // effective minimum response-hold timeout
	DefaultKeepAliveTimeout = 55  // Grip-Keep-Alive timeout default
	MinKeepAliveTimeout     = 1   // effective minimum keep-alive timeout
	DefaultNextLinkTimeout  = 120 // Grip-Link timeout default
	MaxFilters              = 5   // filters per channel (Pushpin's filter stack size)
)

// IsGripHeader reports whether name starts with "Grip-" (case-insensitive).
func IsGripHeader(name string) bool {
	return len(name) >= 5 && strings.EqualFold(name[:5], "Grip-")
}

// IsGRIP reports whether a backend response must be handed to the handler:
// its Content-Type (without params) is application/grip-instruct, or any
// header name starts with Grip- (grip.md §2).
func IsGRIP(h zhttp.Headers) bool {
	for _, x := range h {
		if IsGripHeader(x.Name) {
			return true
		}
	}
	return isInstructType(h)
}

// isInstructType compares case-sensitively, as Pushpin does, so that the
// proxy's detection and the handler's parsing never disagree.
func isInstructType(h zhttp.Headers) bool {
	return SingleParams(h, "Content-Type").First() == InstructContentType
}

// StripGripHeaders returns a copy of h without any Grip-* header.
func StripGripHeaders(h zhttp.Headers) zhttp.Headers {
	out := make(zhttp.Headers, 0, len(h))
	for _, x := range h {
		if !IsGripHeader(x.Name) {
			out = append(out, x)
		}
	}
	return out
}

// DecodeBase64 decodes standard base64 the lenient way Qt's
// QByteArray::fromBase64 does: characters outside the alphabet are skipped,
// padding is optional, a dangling sixth-bit group is dropped. Pushpin never
// rejects a bad `content-bin`/`body-bin`, so neither do we.
func DecodeBase64(s string) []byte {
	buf := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '=' {
			break
		}
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' {
			buf = append(buf, c)
		}
	}
	if len(buf)%4 == 1 {
		buf = buf[:len(buf)-1]
	}
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(buf)))
	// buf holds only alphabet bytes and a valid length, and the non-Strict
	// encoding ignores non-zero trailing bits, so Decode cannot fail.
	n, _ := base64.RawStdEncoding.Decode(out, buf)
	return out[:n]
}

// FormatLast builds one Grip-Last request header value (grip.md §7).
func FormatLast(channel, lastID string) string {
	return channel + "; last-id=" + lastID
}
