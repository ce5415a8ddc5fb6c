package zurl

import "strings"

// policy is the allow/deny host check (zurl's defpolicy/allow/deny).
type policy struct {
	denyDefault bool
	allow, deny []string
}

func newPolicy(def string, allow, deny []string) *policy {
	p := &policy{denyDefault: def == "deny"}
	for _, a := range allow {
		if a = strings.ToLower(strings.TrimSpace(a)); a != "" {
			p.allow = append(p.allow, a)
		}
	}
	for _, d := range deny {
		if d = strings.ToLower(strings.TrimSpace(d)); d != "" {
			p.deny = append(p.deny, d)
		}
	}
	return p
}

// allowed applies the lists to a host name or address. With defpolicy
// allow, a deny match wins unless an allow entry also matches; with deny,
// only an allow match without a deny match passes.
func (p *policy) allowed(host string) bool {
	host = strings.ToLower(strings.Trim(host, "[]"))
	if p.denyDefault {
		return globAny(p.allow, host) && !globAny(p.deny, host)
	}
	return !globAny(p.deny, host) || globAny(p.allow, host)
}

func globAny(pats []string, s string) bool {
	for _, pat := range pats {
		if glob(pat, s) {
			return true
		}
	}
	return false
}

// glob matches `*` (any run of characters, dots included) and literal
// characters; nothing else is special, so IPv6 brackets and `?` are plain.
func glob(pat, s string) bool {
	star, next := -1, 0
	i, j := 0, 0
	for j < len(s) {
		switch {
		case i < len(pat) && pat[i] == '*':
			star, next = i, j
			i++
		case i < len(pat) && pat[i] == s[j]:
			i++
			j++
		case star >= 0:
			next++
			i, j = star+1, next
		default:
			return false
		}
	}
	for i < len(pat) && pat[i] == '*' {
		i++
	}
	return i == len(pat)
}
