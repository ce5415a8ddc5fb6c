package configs

// This is a small hand-written reader for Qt's QSettings INI format. No Go INI
// library implements Qt's value semantics (an unquoted comma turns a value into
// a list, double quotes protect commas, C-style backslash escapes, `;` starting
// a comment anywhere outside quotes, quoted values spanning lines, the
// [General] section meaning the root group), and pushpin.conf, internal.conf
// and zurl.conf are all read by Pushpin/zurl through QSettings, so we follow
// qsettings.cpp (readIniLine, iniUnescapedKey, iniUnescapedStringList) rather
// than the "common" INI dialect.

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// INI is one parsed QSettings INI file. Keys are case-sensitive, as in Qt on
// Unix. The [General] section (any case) and keys before the first section
// header live in the root section "".
type INI struct {
	// Name is the file name used in messages.
	Name string
	// Warnings lists lines Qt would silently skip (neither a section header,
	// a key=value pair nor a comment). They are not fatal because Pushpin
	// accepts such files, but they are usually typos worth reporting.
	Warnings []string

	sections map[string]map[string]iniValue
	order    []string
}

// iniValue is one key's value decoded the way QSettings decodes it.
type iniValue struct {
	str    string   // whole value: quotes removed, escapes applied, commas kept
	list   []string // the comma-separated items; nil unless the value is a list
	isList bool
	line   int
}

// ParseINI parses data as a QSettings INI file. Like Qt it never fails on
// content; malformed lines are reported in Warnings. name is used in messages.
func ParseINI(name string, data []byte) *INI {
	ini := &INI{Name: name, sections: map[string]map[string]iniValue{}}
	section := ""
	pos, lineNo := 0, 1
	for pos < len(data) {
		startLine := lineNo
		text, next, newlines := readINILine(data, pos)
		pos = next
		lineNo += newlines
		t := strings.TrimLeft(string(text), " \t")
		if t == "" || t[0] == '#' || t[0] == ';' {
			continue
		}
		if t[0] == '[' {
			end := strings.IndexByte(t, ']')
			if end < 0 {
				// Qt takes the rest of the line as the section name.
				end = len(t)
				ini.Warnings = append(ini.Warnings, fmt.Sprintf("%s:%d: section header without ']'", name, startLine))
			}
			section = unescapeINIKey(t[1:end])
			if strings.EqualFold(section, "general") {
				section = ""
			}
			continue
		}
		eq := unquotedIndex(t, '=')
		if eq < 0 {
			ini.Warnings = append(ini.Warnings, fmt.Sprintf("%s:%d: ignoring line without '=': %q", name, startLine, strings.TrimSpace(t)))
			continue
		}
		key := unescapeINIKey(t[:eq])
		if key == "" {
			ini.Warnings = append(ini.Warnings, fmt.Sprintf("%s:%d: ignoring line with empty key", name, startLine))
			continue
		}
		raw := t[eq+1:]
		v := iniValue{line: startLine}
		v.str, _, _ = unescapeINIValue(raw, false)
		v.str = variantString(v.str)
		_, v.list, v.isList = unescapeINIValue(raw, true)
		for i := range v.list {
			v.list[i] = variantString(v.list[i])
		}
		sec := ini.sections[section]
		if sec == nil {
			sec = map[string]iniValue{}
			ini.sections[section] = sec
			ini.order = append(ini.order, section)
		}
		sec[key] = v // later duplicates win, as in Qt
	}
	return ini
}

// Sections returns the section names in file order ("" is the root/General).
func (f *INI) Sections() []string { return append([]string(nil), f.order...) }

// Keys returns the keys of a section (unordered).
func (f *INI) Keys(section string) []string {
	var out []string
	for k := range f.sections[section] {
		out = append(out, k)
	}
	return out
}

// Get returns the whole value of section/key (a list value is returned as
// written, with its commas), without any substitution.
func (f *INI) Get(section, key string) (string, bool) {
	v, ok := f.lookup(section, key)
	return v.str, ok
}

// List returns section/key split into its comma-separated items (Qt's
// toStringList). A value without an unquoted comma is a one-item list; an
// empty value is an empty list.
func (f *INI) List(section, key string) ([]string, bool) {
	v, ok := f.lookup(section, key)
	if !ok {
		return nil, false
	}
	return v.items(), true
}

// Line returns the line number where section/key was defined.
func (f *INI) Line(section, key string) (int, bool) {
	v, ok := f.lookup(section, key)
	return v.line, ok
}

func (f *INI) lookup(section, key string) (iniValue, bool) {
	if f == nil {
		return iniValue{}, false
	}
	if strings.EqualFold(section, "general") {
		section = ""
	}
	v, ok := f.sections[section][key]
	return v, ok
}

func (v iniValue) items() []string {
	if v.isList {
		return append([]string(nil), v.list...)
	}
	if v.str == "" {
		return nil
	}
	return []string{v.str}
}

// readINILine returns the logical line starting at pos (without comment), the
// position after it, and the number of newlines consumed. Quoted text may span
// lines and a backslash escapes a newline, as in Qt's readIniLine.
func readINILine(data []byte, pos int) (text []byte, next, newlines int) {
	inQuotes := false
	i := pos
	end := -1
	// A whole-line comment ends at the newline even if it holds an odd number
	// of quotes (Qt would keep reading; that only ever swallows real keys).
	j := pos
	for j < len(data) && (data[j] == ' ' || data[j] == '\t') {
		j++
	}
	if j < len(data) && (data[j] == '#' || data[j] == ';') {
		end = j
	}
	for i < len(data) {
		ch := data[i]
		switch ch {
		case '\n', '\r':
			if !inQuotes {
				if end < 0 {
					end = i
				}
				// consume one line terminator (\n, \r, \r\n or \n\r)
				i++
				if i < len(data) && (data[i] == '\n' || data[i] == '\r') && data[i] != ch {
					i++
				}
				return data[pos:end], i, newlines + 1
			}
			newlines++
		case '\\':
			if end < 0 && i+1 < len(data) {
				i++
				if data[i] == '\n' || data[i] == '\r' {
					newlines++
					if i+1 < len(data) && (data[i+1] == '\n' || data[i+1] == '\r') && data[i+1] != data[i] {
						i++
					}
				}
			}
		case '"':
			if end < 0 {
				inQuotes = !inQuotes
			}
		case ';':
			if !inQuotes && end < 0 {
				end = i // the rest of the line is a comment
			}
		}
		i++
	}
	if end < 0 {
		end = len(data)
	}
	return data[pos:end], len(data), newlines
}

// unquotedIndex finds the first c outside double quotes.
func unquotedIndex(s string, c byte) int {
	inQuotes := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			inQuotes = !inQuotes
		case c:
			if !inQuotes {
				return i
			}
		}
	}
	return -1
}

// unescapeINIKey follows Qt's iniUnescapedKey: trimmed, %XX and %UXXXX decoded,
// backslash meaning a group separator.
func unescapeINIKey(s string) string {
	s = strings.TrimSpace(s)
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			b.WriteByte('/')
		case c == '%' && i+2 < len(s) && s[i+1] == 'U' && i+5 < len(s) && isHex(s[i+2:i+6]):
			b.WriteRune(rune(hexVal(s[i+2 : i+6])))
			i += 5
		case c == '%' && i+2 < len(s) && isHex(s[i+1:i+3]):
			b.WriteRune(rune(hexVal(s[i+1 : i+3])))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

var iniEscapes = map[byte]byte{'a': '\a', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v', '"': '"', '?': '?', '\'': '\'', '\\': '\\'}

// unescapeINIValue follows Qt's iniUnescapedStringList. With split, unquoted
// commas separate items (each trimmed unless quoted) and isList reports
// whether any was found; without split the whole value is returned in str.
func unescapeINIValue(s string, split bool) (str string, list []string, isList bool) {
	var cur strings.Builder
	inQuotes, curQuoted := false, false
	chop := 0 // trailing spaces before this length are protected (escapes, quotes)
	i := 0
	skipSpaces := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		chop = cur.Len()
	}
	chopTrailing := func() string {
		out := cur.String()
		for len(out) > chop && (out[len(out)-1] == ' ' || out[len(out)-1] == '\t') {
			out = out[:len(out)-1]
		}
		return out
	}
	skipSpaces()
	for i < len(s) {
		c := s[i]
		switch {
		case c == '\\':
			i++
			if i >= len(s) {
				break
			}
			e := s[i]
			i++
			switch r, ok := iniEscapes[e]; {
			case ok:
				cur.WriteByte(r)
			case e == 'x':
				v, n := 0, 0
				for i < len(s) && isHex(s[i:i+1]) {
					v = (v*16 + hexVal(s[i:i+1])) & 0xffff
					i++
					n++
				}
				if n > 0 {
					writeUnit(&cur, v)
				}
			case e >= '0' && e <= '7':
				v := int(e - '0')
				for i < len(s) && s[i] >= '0' && s[i] <= '7' {
					v = (v*8 + int(s[i]-'0')) & 0xffff
					i++
				}
				writeUnit(&cur, v)
			case e == '\n' || e == '\r':
				if i < len(s) && (s[i] == '\n' || s[i] == '\r') && s[i] != e {
					i++
				}
			}
			// any other escaped character is dropped, as Qt does
			chop = cur.Len()
		case c == '"':
			i++
			curQuoted = true
			inQuotes = !inQuotes
			if !inQuotes {
				skipSpaces()
			}
		case c == ',' && split && !inQuotes:
			item := cur.String()
			if !curQuoted {
				item = chopTrailing()
			}
			list = append(list, item)
			isList = true
			cur.Reset()
			curQuoted = false
			i++
			skipSpaces()
		default:
			j := i + 1
			for j < len(s) && s[j] != '\\' && s[j] != '"' && !(split && s[j] == ',') {
				j++
			}
			cur.WriteString(s[i:j])
			i = j
		}
	}
	last := cur.String()
	if !curQuoted {
		last = chopTrailing()
	}
	if isList {
		list = append(list, last)
		return "", list, true
	}
	return last, nil, false
}

func writeUnit(b *strings.Builder, v int) {
	if v < 0xd800 || v > 0xdfff {
		b.WriteRune(rune(v))
	} else {
		b.WriteRune(utf8.RuneError)
	}
}

// variantString applies the @-prefixed encodings of Qt's stringToVariant that
// can appear in hand-written files.
func variantString(s string) string {
	switch {
	case strings.HasPrefix(s, "@@"):
		return s[1:]
	case strings.HasPrefix(s, "@ByteArray(") && strings.HasSuffix(s, ")"):
		return s[len("@ByteArray(") : len(s)-1]
	}
	return s
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return len(s) > 0
}

func hexVal(s string) int {
	v := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			v = v*16 + int(c-'0')
		case c >= 'a' && c <= 'f':
			v = v*16 + int(c-'a'+10)
		default:
			v = v*16 + int(c-'A'+10)
		}
	}
	return v
}
