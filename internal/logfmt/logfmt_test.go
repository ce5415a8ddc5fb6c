package logfmt

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestZerologLevelMapsPushpinLevels(t *testing.T) {
	t.Parallel()
	want := []zerolog.Level{zerolog.ErrorLevel, zerolog.WarnLevel, zerolog.InfoLevel, zerolog.DebugLevel, zerolog.TraceLevel}
	for n, w := range want {
		if got := ZerologLevel(n); got != w {
			t.Errorf("level %d: %v, want %v", n, got, w)
		}
	}
}

// Lines read like Pushpin's: "[WARN] 2006-01-02 15:04:05.000 message k=v",
// and events below the level are dropped.
func TestNewLoggerWritesPushpinLines(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	log := NewLogger(&b, 1)
	log.Info().Msg("hidden")
	log.Warn().Str("k", "v").Msg("shown")
	line := regexp.MustCompile(`^\[WARN\] \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} shown k=v\n$`)
	if s := b.String(); !line.MatchString(s) {
		t.Fatalf("log output %q, want one Pushpin-style WARN line", s)
	}
}

// Reopen starts a new file at the path after the old one was moved away
// (what logrotate does before sending SIGHUP); nothing more goes to the old.
func TestLogFileReopenAfterRename(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "x.log")
	f, err := OpenLogFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("before\n")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := f.Reopen(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("after\n")); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if string(old) != "before\n" || string(cur) != "after\n" {
		t.Fatalf("old file %q, new file %q; want \"before\\n\" and \"after\\n\"", old, cur)
	}
}

func TestOpenLogFileNamesTheFailure(t *testing.T) {
	t.Parallel()
	_, err := OpenLogFile(filepath.Join(t.TempDir(), "missing", "x.log"))
	if err == nil || !strings.Contains(err.Error(), "missing/x.log") {
		t.Fatalf("err %v, want the path named", err)
	}
}
