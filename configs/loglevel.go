package configs

import (
	"fmt"
	"strconv"
	"strings"
)

// Log levels as Pushpin numbers them.
const (
	LevelError   = 0
	LevelWarning = 1
	LevelInfo    = 2
	LevelDebug   = 3
	LevelTrace   = 4 // condure only
)

// LogLevels is a parsed [runner] log_level / --loglevel list: a default level
// and per-service overrides.
type LogLevels struct {
	Default  int            // LevelInfo unless the list has a bare "N"
	Services map[string]int // canonical service name (or "runner") -> level
}

// knownLogServices are the names accepted before ':' in a level item.
var knownLogServices = map[string]bool{
	ServiceConnMgr: true, ServiceZurl: true, ServiceProxy: true, ServiceHandler: true,
	ServiceRunner: true, "mongrel2": true, "m2adapter": true,
}

// ParseLogLevels parses items like "2", "condure:3", "pushpin-proxy:1".
// "connmgr" is an alias of "condure". Empty items are ignored.
func ParseLogLevels(items []string) (LogLevels, error) {
	l := LogLevels{Default: LevelInfo}
	for _, it := range items {
		it = strings.TrimSpace(it)
		if it == "" {
			continue
		}
		name, num, hasName := strings.Cut(it, ":")
		if !hasName {
			num, name = name, ""
		}
		n, err := strconv.Atoi(strings.TrimSpace(num))
		if err != nil || n < 0 {
			return LogLevels{Default: LevelInfo}, fmt.Errorf("is not a log level list (item %q: want N or service:N with N >= 0)", it)
		}
		if !hasName {
			l.Default = n
			continue
		}
		name = canonicalService(strings.TrimSpace(name))
		if !knownLogServices[name] {
			return LogLevels{Default: LevelInfo}, fmt.Errorf("is not a log level list (unknown service %q)", name)
		}
		if l.Services == nil {
			l.Services = map[string]int{}
		}
		l.Services[name] = n
	}
	return l, nil
}

// For returns the level for a service (canonical name or alias).
func (l LogLevels) For(service string) int {
	if n, ok := l.Services[canonicalService(service)]; ok {
		return n
	}
	return l.Default
}
