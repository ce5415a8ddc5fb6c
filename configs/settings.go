package configs

import (
	"strconv"
	"strings"
)

// Settings is the layered key/value view Pushpin's Settings class gives every
// process: the main file, then the [global] include file (main wins per key),
// with {libdir}, {rundir} and {ipc_prefix} substituted and port_offset added
// to the first tcp://host:PORT of each value.
type Settings struct {
	main, include         *INI
	mainName, includeName string

	libDir     string
	runDir     string
	ipcPrefix  string
	portOffset int
}

func (s *Settings) raw(section, key string) (v iniValue, file string, ok bool) {
	if v, ok := s.main.lookup(section, key); ok {
		return v, s.mainName, true
	}
	if v, ok := s.include.lookup(section, key); ok {
		return v, s.includeName, true
	}
	return iniValue{}, "", false
}

// Get returns the whole value of section/key after substitutions.
func (s *Settings) Get(section, key string) (string, bool) {
	v, _, ok := s.raw(section, key)
	if !ok {
		return "", false
	}
	return s.resolve(v.str), true
}

// List returns the items of section/key after substitutions (see INI.List).
func (s *Settings) List(section, key string) ([]string, bool) {
	v, _, ok := s.raw(section, key)
	if !ok {
		return nil, false
	}
	items := v.items()
	for i := range items {
		items[i] = s.resolve(items[i])
	}
	return items, true
}

// File reports which file section/key was read from.
func (s *Settings) File(section, key string) string {
	_, f, _ := s.raw(section, key)
	if f == "" {
		return s.mainName
	}
	return f
}

func (s *Settings) resolve(v string) string {
	if strings.IndexByte(v, '{') >= 0 {
		v = strings.ReplaceAll(v, "{libdir}", s.libDir)
		v = strings.ReplaceAll(v, "{rundir}", s.runDir)
		v = strings.ReplaceAll(v, "{ipc_prefix}", s.ipcPrefix)
	}
	return AddPortOffset(v, s.portOffset)
}

// AddPortOffset adds offset to the port of the first tcp://host:PORT in v
// (Pushpin's port_offset rule). Values without such a port are unchanged.
func AddPortOffset(v string, offset int) string {
	if offset == 0 {
		return v
	}
	at := strings.Index(v, "tcp://")
	if at < 0 {
		return v
	}
	hostStart := at + len("tcp://")
	rest := v[hostStart:]
	colon := -1
	if strings.HasPrefix(rest, "[") {
		if end := strings.IndexByte(rest, ']'); end >= 0 && end+1 < len(rest) && rest[end+1] == ':' {
			colon = end + 1
		}
	} else {
		colon = strings.IndexAny(rest, ":/")
		if colon >= 0 && rest[colon] != ':' {
			colon = -1
		}
	}
	if colon < 0 {
		return v
	}
	pstart := hostStart + colon + 1
	pend := pstart
	for pend < len(v) && v[pend] >= '0' && v[pend] <= '9' {
		pend++
	}
	if pend == pstart {
		return v
	}
	port, err := strconv.Atoi(v[pstart:pend])
	if err != nil {
		return v
	}
	return v[:pstart] + strconv.Itoa(port+offset) + v[pend:]
}
