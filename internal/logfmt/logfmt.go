// Package logfmt is Pushpin's log line format and log file, shared by every
// program (runner and tiers) so that merged output and log scrapers read the
// same for all of them. It is its own package so that a tier's logging
// links neither the runner nor any other process package.
package logfmt

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/configs"
)

// ZerologLevel maps a Pushpin log level (0 error, 1 warning, 2 info,
// 3 debug, 4 trace) to zerolog's.
func ZerologLevel(level int) zerolog.Level {
	switch {
	case level <= configs.LevelError:
		return zerolog.ErrorLevel
	case level == configs.LevelWarning:
		return zerolog.WarnLevel
	case level == configs.LevelInfo:
		return zerolog.InfoLevel
	case level == configs.LevelDebug:
		return zerolog.DebugLevel
	default:
		return zerolog.TraceLevel
	}
}

var levelNames = map[string]string{
	"trace": "TRACE", "debug": "DEBUG", "info": "INFO", "warn": "WARN",
	"error": "ERR", "fatal": "FATAL", "panic": "PANIC",
}

// NewLogger returns a zerolog logger writing Pushpin's line format
// ("[INFO] 2006-01-02 15:04:05.000 message key=value"), so merged output
// and log scrapers look the same as with Pushpin.
func NewLogger(w io.Writer, level int) zerolog.Logger {
	cw := zerolog.ConsoleWriter{
		Out:     w,
		NoColor: true,
		// The hook below writes the timestamp already formatted; zerolog's
		// own field would be truncated to seconds by the global
		// TimeFieldFormat, which other packages may rely on.
		FormatTimestamp: func(i any) string { s, _ := i.(string); return s },
		PartsOrder:      []string{zerolog.LevelFieldName, zerolog.TimestampFieldName, zerolog.MessageFieldName},
		FormatLevel: func(i any) string {
			s, _ := i.(string)
			if n, ok := levelNames[s]; ok {
				return "[" + n + "]"
			}
			return "[" + strings.ToUpper(s) + "]"
		},
	}
	return zerolog.New(cw).Level(ZerologLevel(level)).Hook(timeHook{})
}

// timeHook stamps each event with Pushpin's millisecond time layout.
type timeHook struct{}

func (timeHook) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str(zerolog.TimestampFieldName, time.Now().Format(timeLayout))
}

const timeLayout = "2006-01-02 15:04:05.000"

// LogFile is a program's --logfile: an append-mode file that SIGHUP
// reopens, so logrotate can move it away.
type LogFile struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

// OpenLogFile opens path for appending.
func OpenLogFile(path string) (*LogFile, error) {
	l := &LogFile{path: path}
	if err := l.Reopen(); err != nil {
		return nil, err
	}
	return l, nil
}

// Write appends p.
func (l *LogFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

// Reopen closes and reopens the file at its path.
func (l *LogFile) Reopen() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening log file: %w", err)
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// Close closes the file.
func (l *LogFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
