package grip

import (
	"strings"

	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// Param is one `name[=value]` pair of a header item. When an item is parsed
// without parsing its first part (the usual case), the first Param holds the
// whole first part in Name and an empty Value.
type Param struct {
	Name, Value string
}

// Params is one parsed header item: `first-part *( ";" name [ "=" value ] )`.
type Params []Param

// First returns the item's first part ("" for an empty item).
func (p Params) First() string {
	if len(p) == 0 {
		return ""
	}
	return p[0].Name
}

// Get returns the value of the first parameter named name (case-insensitive)
// and whether it is present. The first part takes part in the lookup, as in
// Pushpin, so callers should use names that cannot be a first part.
func (p Params) Get(name string) (string, bool) {
	for _, x := range p {
		if strings.EqualFold(x.Name, name) {
			return x.Value, true
		}
	}
	return "", false
}

// isSpace matches the bytes Qt's QByteArray::trimmed removes; unlike
// strings.TrimSpace it leaves multi-byte Unicode spaces alone, as Pushpin does.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func trim(s string) string {
	i, j := 0, len(s)
	for i < j && isSpace(s[i]) {
		i++
	}
	for j > i && isSpace(s[j-1]) {
		j--
	}
	return s[i:j]
}

// SplitList splits a list-header value on commas outside double quotes and
// trims each item. An unterminated quote (or a backslash ending a quote)
// makes the rest of the value one item, which ParseParams then rejects.
func SplitList(s string) []string {
	var out []string
	pos := 0
	for pos < len(s) {
		end := indexUnquoted(s, ',', pos)
		if end < 0 {
			out = append(out, trim(s[pos:]))
			break
		}
		out = append(out, trim(s[pos:end]))
		pos = end + 1
	}
	return out
}

// indexUnquoted returns the index of c outside quotes at or after off,
// len(s) when absent, or -1 when a quote is left open.
func indexUnquoted(s string, c byte, off int) int {
	inQuote := false
	for n := off; n < len(s); n++ {
		ch := s[n]
		switch {
		case inQuote && ch == '\\':
			n++
			if n >= len(s) {
				return -1
			}
		case inQuote && ch == '"':
			inQuote = false
		case inQuote:
		case ch == '"':
			inQuote = true
		case ch == c:
			return n
		}
	}
	if inQuote {
		return -1
	}
	return len(s)
}

// ParseParams parses one header item. With parseFirst false the first part
// (everything before the first ';') is kept verbatim, trimmed and never
// unquoted; with parseFirst true it is parsed as `name=value` too (used by
// Grip-Set-Meta). A value is either a token, trimmed, up to the next ';', or
// a quoted string in which `\x` yields x. ok is false when a quoted string is
// unterminated.
func ParseParams(s string, parseFirst bool) (p Params, ok bool) {
	i := 0
	if !parseFirst {
		if at := strings.IndexByte(s, ';'); at >= 0 {
			p = append(p, Param{Name: trim(s[:at])})
			i = at + 1
		} else {
			p = append(p, Param{Name: trim(s)})
			i = len(s)
		}
	}
	for i < len(s) {
		at := strings.IndexAny(s[i:], "=;")
		if at < 0 {
			p = append(p, Param{Name: trim(s[i:])})
			break
		}
		at += i
		name := trim(s[i:at])
		var val string
		if s[at] != '=' {
			i = at + 1
			p = append(p, Param{Name: name})
			continue
		}
		at++
		if at < len(s) && s[at] == '"' {
			var b strings.Builder
			n := at + 1
			for ; n < len(s) && s[n] != '"'; n++ {
				if s[n] == '\\' {
					if n+1 >= len(s) {
						return nil, false
					}
					n++
				}
				b.WriteByte(s[n])
			}
			if n == len(s) { // no closing quote
				return nil, false
			}
			val = b.String()
			// Anything between the closing quote and the next ';' is ignored.
			if semi := strings.IndexByte(s[n+1:], ';'); semi >= 0 {
				i = n + 1 + semi + 1
			} else {
				i = len(s)
			}
		} else if semi := strings.IndexByte(s[at:], ';'); semi >= 0 {
			val = trim(s[at : at+semi])
			i = at + semi + 1
		} else {
			val = trim(s[at:])
			i = len(s)
		}
		p = append(p, Param{Name: name, Value: val})
	}
	return p, true
}

// ListParams returns the parsed items of a list header (Grip-Channel,
// Grip-Link, Grip-Set-Meta, Grip-Last): every occurrence, comma-split outside
// quotes. Items that fail to parse are skipped, as Pushpin does.
func ListParams(h zhttp.Headers, name string, parseFirst bool) []Params {
	var out []Params
	for _, x := range h {
		if !strings.EqualFold(x.Name, name) {
			continue
		}
		for _, item := range SplitList(x.Value) {
			if p, ok := ParseParams(item, parseFirst); ok {
				out = append(out, p)
			}
		}
	}
	return out
}

// ListValues returns the comma-split items of every occurrence of a list
// header, without parameter parsing (Grip-Expose-Headers).
func ListValues(h zhttp.Headers, name string) []string {
	var out []string
	for _, x := range h {
		if strings.EqualFold(x.Name, name) {
			out = append(out, SplitList(x.Value)...)
		}
	}
	return out
}

// SingleParams parses the first occurrence of a single header (Grip-Hold,
// Grip-Keep-Alive, Content-Type), not comma-split. It returns nil when the
// header is absent, empty, or unparsable.
func SingleParams(h zhttp.Headers, name string) Params {
	v := h.Get(name)
	if v == "" {
		return nil
	}
	p, ok := ParseParams(v, false)
	if !ok {
		return nil
	}
	return p
}
