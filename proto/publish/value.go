package publish

import (
	"fmt"
	"math"
	"sort"
	"strconv"
)

// The parsers work on generic values from either encoding/json (strings are
// string, numbers float64) or tnetstring.Decode (strings are []byte, ints
// int64). src records which, because Pushpin's messages and the meaning of
// content-bin/body-bin differ between the two.
type src struct{ json bool }

func asMap(v any) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	return m, ok
}

func asString(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case []byte:
		return string(t), true
	}
	return "", false
}

// asBytes returns string content as bytes; []byte from tnetstring input is
// returned as is (it aliases the decoded frame).
func asBytes(v any) ([]byte, bool) {
	switch t := v.(type) {
	case string:
		return []byte(t), true
	case []byte:
		return t, true
	}
	return nil, false
}

// asInt accepts what Qt's canConvert(Int) accepts: numbers (truncated),
// digit strings (tnetstring.md: Pushpin emits some ints as strings), bools.
func asInt(v any) (int, bool) {
	switch t := v.(type) {
	case float64:
		if math.IsNaN(t) || t > math.MaxInt32 || t < math.MinInt32 {
			return 0, false
		}
		return int(t), true
	case int64:
		if t > math.MaxInt32 || t < math.MinInt32 {
			return 0, false
		}
		return int(t), true
	case string, []byte:
		s, _ := asString(t)
		n, err := strconv.ParseInt(s, 10, 32)
		return int(n), err == nil
	case bool:
		if t {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// getString reads an optional (or required) string member, with Pushpin's
// messages.
func getString(m map[string]any, pn, key string, required bool) (s string, present bool, err error) {
	v, ok := m[key]
	if !ok {
		if required {
			return "", false, formatErr(fmt.Sprintf("%s does not contain '%s'", pn, key))
		}
		return "", false, nil
	}
	s, ok = asString(v)
	if !ok {
		return "", true, wrongType(pn, key)
	}
	return s, true, nil
}

func wrongType(pn, key string) *Error {
	return formatErr(fmt.Sprintf("%s contains '%s' with wrong type", pn, key))
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// jsonStyle converts tnetstring values to what encoding/json marshals as the
// same JSON ([]byte → string), for body-patch.
func jsonStyle(v any) any {
	switch t := v.(type) {
	case []byte:
		return string(t)
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = jsonStyle(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = jsonStyle(x)
		}
		return out
	}
	return v
}
