package cli

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// With PUSHPIN_PPROF_DIR set a tier writes its pprof address there and
// serves the profiles on it; unset, it writes nothing.
func TestPprofOptIn(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(PprofEnv, "")
	log, err := Logger("", "2", false)
	if err != nil {
		t.Fatal(err)
	}
	servePprof("idle tier", log)
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("wrote %v without the variable", ents)
	}
	t.Setenv(PprofEnv, dir)
	servePprof("some tier", log)
	addr, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("some-tier-%d.pprof", os.Getpid())))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + string(addr) + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "HeapAlloc") {
		t.Fatalf("heap profile: %d %.200s", resp.StatusCode, b)
	}
}
