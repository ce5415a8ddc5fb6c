package configs

import (
	"errors"
	"fmt"
)

// ErrNoConfigFile is returned by FindConfigFile (and Load without a path)
// when none of the default locations holds a pushpin.conf.
var ErrNoConfigFile = errors.New("no config file found")

// ErrInvalid is wrapped by every validation error, so callers can tell a bad
// configuration (exit with a message) from an I/O failure.
var ErrInvalid = errors.New("invalid configuration")

// ValueError is a validation error about one key. Its message names the file,
// the section and key, and the offending value:
//
//	pushpin.conf: [runner] http_port: "abc" is not a port
type ValueError struct {
	File    string // file the value came from ("" for command-line options)
	Section string
	Key     string
	Value   string
	Reason  string // e.g. "is not a port"
}

func (e *ValueError) Error() string {
	prefix := ""
	if e.File != "" {
		prefix = e.File + ": "
	}
	if e.Section == "" {
		return fmt.Sprintf("%s%s: %q %s", prefix, e.Key, e.Value, e.Reason)
	}
	return fmt.Sprintf("%s[%s] %s: %q %s", prefix, e.Section, e.Key, e.Value, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *ValueError) Unwrap() error { return ErrInvalid }

func joinErrs(errs []error) error { return errors.Join(errs...) }
