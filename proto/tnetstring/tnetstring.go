// Package tnetstring encodes and decodes TNetStrings, the framing every zhttp,
// zrpc and publish message uses between Pushpin processes.
//
// Two decoding styles are offered: Decode builds generic Go values (for
// publish items and RPCs, where convenience matters), while Parse returns a
// zero-copy Elem whose Dict/List walkers let hot paths (zhttp packets) read
// fields without allocating a map.
package tnetstring

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
)

// Type tags.
const (
	TagString = ','
	TagInt    = '#'
	TagFloat  = '^'
	TagBool   = '!'
	TagNull   = '~'
	TagDict   = '}'
	TagList   = ']'
)

// MaxDepth bounds container nesting when decoding untrusted input.
const MaxDepth = 64

// Errors callers may test for.
var (
	ErrShort     = errors.New("tnetstring: truncated input")
	ErrSize      = errors.New("tnetstring: bad size prefix")
	ErrTag       = errors.New("tnetstring: unknown type tag")
	ErrValue     = errors.New("tnetstring: bad value")
	ErrDepth     = errors.New("tnetstring: nesting too deep")
	ErrKey       = errors.New("tnetstring: dict key is not a string")
	ErrType      = errors.New("tnetstring: wrong type")
	ErrUnencoded = errors.New("tnetstring: cannot encode value")
)

// Elem is one undecoded element: its tag and payload, aliasing the input.
type Elem struct {
	Tag  byte
	Data []byte
}

// Parse splits the first element off b without copying.
func Parse(b []byte) (Elem, []byte, error) {
	n := 0
	i := 0
	for ; i < len(b); i++ {
		c := b[i]
		if c == ':' {
			break
		}
		if c < '0' || c > '9' || i >= 10 {
			return Elem{}, nil, ErrSize
		}
		n = n*10 + int(c-'0')
	}
	if i == len(b) {
		return Elem{}, nil, ErrShort
	}
	if i == 0 {
		return Elem{}, nil, ErrSize
	}
	start := i + 1
	end := start + n
	if end >= len(b) || end < start {
		return Elem{}, nil, ErrShort
	}
	tag := b[end]
	switch tag {
	case TagString, TagInt, TagFloat, TagBool, TagNull, TagDict, TagList:
	default:
		return Elem{}, nil, ErrTag
	}
	return Elem{Tag: tag, Data: b[start:end:end]}, b[end+1:], nil
}

// Dict calls fn for each key/value pair of a dict element, in wire order.
func (e Elem) Dict(fn func(key []byte, v Elem) error) error {
	if e.Tag != TagDict {
		return ErrType
	}
	b := e.Data
	for len(b) > 0 {
		k, rest, err := Parse(b)
		if err != nil {
			return err
		}
		if k.Tag != TagString {
			return ErrKey
		}
		v, rest, err := Parse(rest)
		if err != nil {
			return err
		}
		if err := fn(k.Data, v); err != nil {
			return err
		}
		b = rest
	}
	return nil
}

// List calls fn for each item of a list element.
func (e Elem) List(fn func(v Elem) error) error {
	if e.Tag != TagList {
		return ErrType
	}
	b := e.Data
	for len(b) > 0 {
		v, rest, err := Parse(b)
		if err != nil {
			return err
		}
		if err := fn(v); err != nil {
			return err
		}
		b = rest
	}
	return nil
}

// Int reads an integer element. A string of digits is accepted too, because
// Pushpin's C++ side emits some integer fields (peer-port) as strings.
func (e Elem) Int() (int64, error) {
	if e.Tag != TagInt && e.Tag != TagString {
		return 0, ErrType
	}
	v, err := strconv.ParseInt(string(e.Data), 10, 64)
	if err != nil {
		return 0, ErrValue
	}
	return v, nil
}

// Bool reads a boolean element.
func (e Elem) Bool() (bool, error) {
	if e.Tag != TagBool {
		return false, ErrType
	}
	switch string(e.Data) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, ErrValue
}

// Bytes reads a string element (aliasing the input).
func (e Elem) Bytes() ([]byte, error) {
	if e.Tag != TagString {
		return nil, ErrType
	}
	return e.Data, nil
}

// Value decodes the element into generic Go values (see Decode).
func (e Elem) Value() (any, error) { return e.value(0) }

func (e Elem) value(depth int) (any, error) {
	switch e.Tag {
	case TagString:
		return e.Data, nil
	case TagInt:
		v, err := strconv.ParseInt(string(e.Data), 10, 64)
		if err != nil {
			return nil, ErrValue
		}
		return v, nil
	case TagFloat:
		v, err := strconv.ParseFloat(string(e.Data), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, ErrValue
		}
		return v, nil
	case TagBool:
		return e.Bool()
	case TagNull:
		if len(e.Data) != 0 {
			return nil, ErrValue
		}
		return nil, nil
	case TagDict:
		if depth >= MaxDepth {
			return nil, ErrDepth
		}
		m := map[string]any{}
		err := e.Dict(func(k []byte, v Elem) error {
			x, err := v.value(depth + 1)
			if err != nil {
				return err
			}
			m[string(k)] = x
			return nil
		})
		if err != nil {
			return nil, err
		}
		return m, nil
	case TagList:
		if depth >= MaxDepth {
			return nil, ErrDepth
		}
		l := []any{}
		err := e.List(func(v Elem) error {
			x, err := v.value(depth + 1)
			if err != nil {
				return err
			}
			l = append(l, x)
			return nil
		})
		if err != nil {
			return nil, err
		}
		return l, nil
	}
	return nil, ErrTag
}

// Decode parses one element into generic values: string → []byte, int →
// int64, float → float64, bool, null → nil, dict → map[string]any, list →
// []any. Bytes after the element are ignored, as Pushpin's parser does.
func Decode(b []byte) (any, error) {
	e, _, err := Parse(b)
	if err != nil {
		return nil, err
	}
	return e.Value()
}

// Encode returns the encoding of v (see Append for accepted types).
func Encode(v any) ([]byte, error) { return Append(nil, v) }

// Append appends the encoding of v to dst. Accepted: nil, bool, all integer
// kinds, float32/64, string, []byte, map[string]any (keys sorted, so output
// is deterministic), []any, [][]byte, []string, [][2][]byte (header lists),
// Elem (copied verbatim) and Marshaler.
func Append(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "0:~"...), nil
	case bool:
		if x {
			return append(dst, "4:true!"...), nil
		}
		return append(dst, "5:false!"...), nil
	case int:
		return AppendInt(dst, int64(x)), nil
	case int64:
		return AppendInt(dst, x), nil
	case int32:
		return AppendInt(dst, int64(x)), nil
	case uint32:
		return AppendInt(dst, int64(x)), nil
	case uint64:
		if x > math.MaxInt64 {
			return dst, ErrUnencoded
		}
		return AppendInt(dst, int64(x)), nil
	case float64:
		return appendFloat(dst, x), nil
	case float32:
		return appendFloat(dst, float64(x)), nil
	case string:
		return AppendString(dst, x), nil
	case []byte:
		return AppendBytes(dst, x), nil
	case Elem:
		return appendElem(dst, x), nil
	case Marshaler:
		return x.AppendTNetString(dst)
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return AppendContainer(dst, TagDict, func(b []byte) ([]byte, error) {
			var err error
			for _, k := range keys {
				b = AppendString(b, k)
				if b, err = Append(b, x[k]); err != nil {
					return b, err
				}
			}
			return b, nil
		})
	case []any:
		return AppendContainer(dst, TagList, func(b []byte) ([]byte, error) {
			var err error
			for _, it := range x {
				if b, err = Append(b, it); err != nil {
					return b, err
				}
			}
			return b, nil
		})
	case []string:
		return AppendContainer(dst, TagList, func(b []byte) ([]byte, error) {
			for _, it := range x {
				b = AppendString(b, it)
			}
			return b, nil
		})
	case [][]byte:
		return AppendContainer(dst, TagList, func(b []byte) ([]byte, error) {
			for _, it := range x {
				b = AppendBytes(b, it)
			}
			return b, nil
		})
	case [][2][]byte:
		return AppendContainer(dst, TagList, func(b []byte) ([]byte, error) {
			for _, it := range x {
				b, _ = AppendContainer(b, TagList, func(b []byte) ([]byte, error) {
					return AppendBytes(AppendBytes(b, it[0]), it[1]), nil
				})
			}
			return b, nil
		})
	}
	return dst, fmt.Errorf("%w: %T", ErrUnencoded, v)
}

// Marshaler is implemented by types that encode themselves.
type Marshaler interface {
	AppendTNetString(dst []byte) ([]byte, error)
}

// appendLen appends a size prefix's digits. Sizes are mostly small, and
// strconv.AppendInt was four tenths of encoding a zhttp packet.
func appendLen(dst []byte, n int) []byte {
	switch {
	case n < 10:
		return append(dst, byte('0'+n))
	case n < 100:
		return append(dst, byte('0'+n/10), byte('0'+n%10))
	case n < 1000:
		return append(dst, byte('0'+n/100), byte('0'+n/10%10), byte('0'+n%10))
	}
	return strconv.AppendInt(dst, int64(n), 10)
}

func appendElem(dst []byte, e Elem) []byte {
	dst = appendLen(dst, len(e.Data))
	dst = append(dst, ':')
	dst = append(dst, e.Data...)
	return append(dst, e.Tag)
}

// AppendBytes appends a string element.
func AppendBytes(dst, s []byte) []byte {
	dst = appendLen(dst, len(s))
	dst = append(dst, ':')
	dst = append(dst, s...)
	return append(dst, TagString)
}

// AppendString appends a string element.
func AppendString(dst []byte, s string) []byte {
	dst = appendLen(dst, len(s))
	dst = append(dst, ':')
	dst = append(dst, s...)
	return append(dst, TagString)
}

// AppendInt appends an integer element.
func AppendInt(dst []byte, v int64) []byte {
	if v >= 0 && v < 10 {
		return append(dst, '1', ':', byte('0'+v), TagInt)
	}
	var tmp [20]byte
	d := strconv.AppendInt(tmp[:0], v, 10)
	dst = appendLen(dst, len(d))
	dst = append(dst, ':')
	dst = append(dst, d...)
	return append(dst, TagInt)
}

// AppendBool appends a boolean element.
func AppendBool(dst []byte, v bool) []byte { b, _ := Append(dst, v); return b }

// AppendNull appends a null element.
func AppendNull(dst []byte) []byte { return append(dst, "0:~"...) }

func appendFloat(dst []byte, f float64) []byte {
	var tmp [32]byte
	d := strconv.AppendFloat(tmp[:0], f, 'g', -1, 64)
	dst = appendLen(dst, len(d))
	dst = append(dst, ':')
	dst = append(dst, d...)
	return append(dst, TagFloat)
}

// AppendContainer appends a dict or list whose payload body writes. The
// payload is written in place after a reserved size prefix, then the prefix
// is fixed up, so nested containers cost no temporary buffers.
func AppendContainer(dst []byte, tag byte, body func([]byte) ([]byte, error)) ([]byte, error) {
	// Reserve room for a prefix of up to 9 digits plus ':'.
	const reserve = 10
	var zeros [reserve]byte
	start := len(dst)
	dst = append(dst, zeros[:]...)
	out, err := body(dst)
	if err != nil {
		return out[:start], err
	}
	n := len(out) - start - reserve
	var tmp [20]byte
	p := appendLen(tmp[:0], n)
	p = append(p, ':')
	if len(p) > reserve {
		// Payload ≥ 1 GB: shift to make room (never happens on zhttp sockets).
		grow := len(p) - reserve
		out = append(out, make([]byte, grow)...)
		copy(out[start+len(p):], out[start+reserve:len(out)-grow])
	} else if len(p) < reserve {
		shift := reserve - len(p)
		copy(out[start+len(p):], out[start+reserve:])
		out = out[:len(out)-shift]
	}
	copy(out[start:], p)
	return append(out, tag), nil
}
