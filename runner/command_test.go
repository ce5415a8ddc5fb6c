package runner

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/internal/version"
)

func runCommand(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := NewCommand(&out, &out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestCheckConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Real programs the test can rely on stand in for the slots.
	loadConf(t, dir, "services=condure\nhttp_port=127.0.0.1:7999\ncondure_bin=/bin/sh\n", configs.Options{})
	out, err := runCommand(t, "--config="+filepath.Join(dir, "pushpin.conf"), "--check-config")
	if err != nil || !strings.Contains(out, "config OK") || !strings.Contains(out, "condure: /bin/sh --log-level=2 --listen=127.0.0.1:7999,stream") {
		t.Fatalf("check-config: %v, output %q", err, out)
	}

	// Errors in the config and the routes file are all reported.
	bad := filepath.Join(dir, "bad.conf")
	conf, _ := os.ReadFile(filepath.Join(dir, "pushpin.conf"))
	if err := os.WriteFile(bad, bytes.Replace(conf, []byte("http_port=127.0.0.1:7999"), []byte("http_port=abc"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := runCommand(t, "--config="+bad, "--check-config"); err == nil || !strings.Contains(err.Error(), "http_port") || !strings.Contains(err.Error(), "abc") {
		t.Fatalf("bad http_port: %v", err)
	}
	// With the proxy in the services, routes are parsed too (the proxy
	// program itself may be missing here; both problems are reported).
	pdir := t.TempDir()
	loadConf(t, pdir, "services=condure,pushpin-proxy\nhttp_port=127.0.0.1:7999\ncondure_bin=/bin/sh\n", configs.Options{})
	if _, err := runCommand(t, "--config="+filepath.Join(pdir, "pushpin.conf"), "--check-config", "--route=* test", "--route=* localhost:notaport"); err == nil || !strings.Contains(err.Error(), "--route:2") {
		t.Fatalf("bad --route: %v", err)
	}
	if _, err := runCommand(t, "--config="+filepath.Join(dir, "pushpin.conf"), "--check-config", "--loglevel=x"); err == nil || !strings.Contains(err.Error(), "--loglevel") {
		t.Fatalf("bad --loglevel: %v", err)
	}
}

func TestVersionFlag(t *testing.T) {
	t.Parallel()
	out, err := runCommand(t, "--version")
	if err != nil || !strings.HasPrefix(out, "pushpin "+version.Pushpin) {
		t.Fatalf("--version: %q, %v", out, err)
	}
}
