package cli

import (
	"errors"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestLoggerRejectsNonNumericLevel(t *testing.T) {
	t.Parallel()
	if _, err := Logger("", "debug", false); err == nil || !strings.Contains(err.Error(), `--loglevel: "debug"`) {
		t.Fatalf("err %v, want the flag and value named", err)
	}
}

func TestLoggerNamesAnUnopenableLogFile(t *testing.T) {
	t.Parallel()
	_, err := Logger(filepath.Join(t.TempDir(), "no", "such", "x.log"), "", false)
	if err == nil || !strings.Contains(err.Error(), "--logfile") {
		t.Fatalf("err %v, want --logfile named", err)
	}
}

// Logged hides nothing from errors.Is; it only tells Main not to print.
func TestLoggedKeepsTheError(t *testing.T) {
	t.Parallel()
	base := errors.New("bad config")
	err := Logged(base)
	var l *loggedError
	if !errors.Is(err, base) || !errors.As(err, &l) || err.Error() != "bad config" {
		t.Fatalf("Logged(%v) = %v", base, err)
	}
}

// The log format lives in internal/logfmt so that no tier links the
// runner: the tiers' programs must not depend on package runner.
func TestTiersDoNotLinkTheRunner(t *testing.T) {
	t.Parallel()
	goBin, err := exec.LookPath("go") // go test puts its own bin on PATH
	if err != nil {
		t.Fatal(err)
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	for _, prog := range []string{"pushpin-connmgr", "pushpin-proxy", "pushpin-handler", "pushpin-zurl", "pushpin-publish"} {
		cmd := exec.Command(goBin, "list", "-deps", "./cmd/"+prog)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps ./cmd/%s: %v", prog, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == "github.com/pushpin-go/pushpin/runner" {
				t.Errorf("%s links the runner", prog)
			}
		}
	}
}
