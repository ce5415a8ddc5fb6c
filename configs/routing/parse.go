// Package routing reads Pushpin's routes file (one route per line: a
// condition section, then one or more target sections) and matches requests
// against it with Pushpin 1.36's rules. (The package is not called "routes"
// because configs/routes is the example routes file, named as upstream's.)
package routing

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// section is one space-separated part of a line: a value and its props, in
// order (props may repeat, e.g. header= and sub=).
type section struct {
	value    string
	hasValue bool
	props    []prop
}

type prop struct {
	name, value string
}

// tokenize splits a line into sections. Spaces (not tabs) separate sections,
// commas separate value and props, "=" separates prop names from values, and
// any part may be double-quoted with \\ and \" as the only escapes.
func tokenize(line string) ([]section, error) {
	var out []section
	i := 0
	for {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		if i >= len(line) || line[i] == '#' {
			return out, nil
		}
		// Collect the section's comma-separated parts, unquoting as we go
		// and remembering where the first unquoted '=' of each part is.
		var parts []string
		var eqs []int
		var cur strings.Builder
		eq := -1
		inQ := false
		for ; i < len(line); i++ {
			c := line[i]
			if inQ {
				switch c {
				case '\\':
					if i+1 >= len(line) || (line[i+1] != '\\' && line[i+1] != '"') {
						return nil, errors.New(`invalid escape in quoted string (only \\ and \" are allowed)`)
					}
					i++
					cur.WriteByte(line[i])
				case '"':
					inQ = false
				default:
					cur.WriteByte(c)
				}
				continue
			}
			if c == ' ' || c == '#' {
				break
			}
			switch c {
			case '"':
				inQ = true
			case ',':
				parts, eqs = append(parts, cur.String()), append(eqs, eq)
				cur.Reset()
				eq = -1
			case '=':
				if eq < 0 {
					eq = cur.Len()
				}
				cur.WriteByte(c)
			default:
				cur.WriteByte(c)
			}
		}
		if inQ {
			return nil, errors.New("unterminated quoted string")
		}
		parts, eqs = append(parts, cur.String()), append(eqs, eq)
		var sec section
		for n, p := range parts {
			if n == 0 && eqs[0] < 0 {
				sec.value, sec.hasValue = p, true
				continue
			}
			if eqs[n] >= 0 {
				sec.props = append(sec.props, prop{name: p[:eqs[n]], value: p[eqs[n]+1:]})
			} else {
				sec.props = append(sec.props, prop{name: p})
			}
		}
		out = append(out, sec)
	}
}

// LineError is the error for one rejected line; the line is skipped and the
// others still load.
type LineError struct {
	File string // file name, or "--route"
	Line int    // 1-based
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }

// Unwrap returns the reason.
func (e *LineError) Unwrap() error { return e.Err }

// Parse parses a routes file. Bad lines are skipped and reported, one
// *LineError each, as Pushpin does; the table holds the good ones.
func Parse(name string, data []byte) (*Table, []error) {
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	return ParseLines(name, strings.Split(text, "\n"))
}

// ParseLines parses routes given as separate lines (pushpin --route).
func ParseLines(name string, lines []string) (*Table, []error) {
	t := newTable()
	var errs []error
	for n, line := range lines {
		r, err := parseLine(line)
		if err == nil && r != nil {
			r.Source, r.Line = name, n+1
			err = t.add(r)
		}
		if err != nil {
			errs = append(errs, &LineError{File: name, Line: n + 1, Err: err})
		}
	}
	return t, errs
}

// Load reads and parses a routes file. A read failure is returned as the
// only error, with a nil table.
func Load(path string) (*Table, []error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, []error{fmt.Errorf("reading routes: %w", err)}
	}
	return Parse(path, data)
}
