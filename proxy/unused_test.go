package proxy

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/configs"
)

// newLogged runs New on a config with extra [proxy] lines and returns
// what it logged.
func newLogged(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	return startupLog(t, dir, "[global]\ninclude=internal.conf\nrundir="+dir+"\n[proxy]\nsig_key=changeme\n"+extra)
}

// startupLog builds a proxy from conf (a pushpin.conf in dir) and returns
// what it logged.
func startupLog(t *testing.T, dir, conf string) string {
	t.Helper()
	cfg, err := configs.LoadBytes("pushpin.conf", dir, []byte(conf), configs.Options{Routes: []string{"* test"}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	p, err := New(cfg, zerolog.New(&buf))
	if err != nil {
		t.Fatal(err)
	}
	p.routes.Close()
	return buf.String()
}

// Settings that are parsed but not acted on yet are named, once each, when
// the proxy starts.
func TestStartupWarnsSettingsNotActedOn(t *testing.T) {
	t.Parallel()
	logs := newLogged(t, "auto_cross_origin=true\norig_headers_need_mark=x-a\nlog_from=true\nlog_user_agent=true\n"+
		"prometheus_port=9090\nstats_report_interval=5\nmax_open_requests=100\nupdates_check=report\n")
	for _, key := range []string{"[proxy] auto_cross_origin", "[proxy] orig_headers_need_mark", "[proxy] log_from",
		"[proxy] log_user_agent", "[proxy] prometheus_port", "[proxy] stats_report_interval",
		"[proxy] max_open_requests", "[proxy] updates_check", "[handler] proxy_retry_out_spec"} {
		if n := strings.Count(logs, `"setting":"`+key+`"`); n != 1 {
			t.Errorf("%s warned %d times, want once:\n%s", key, n, logs)
		}
	}
	if !strings.Contains(logs, `"level":"warn"`) || !strings.Contains(logs, "not acted on yet") {
		t.Errorf("warnings do not say so:\n%s", logs)
	}
}

// The example pushpin.conf asks for nothing unbuilt in [proxy]: only the
// retry socket, which every config has (internal.conf), is named.
func TestStartupQuietOnExampleConfig(t *testing.T) {
	t.Parallel()
	example, err := os.ReadFile("../configs/pushpin.conf")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	logs := startupLog(t, dir, strings.Replace(string(example), "[global]\n", "[global]\nrundir="+dir+"\n", 1))
	if strings.Count(logs, "not acted on yet") != 1 || !strings.Contains(logs, "proxy_retry_out_spec") {
		t.Errorf("example config warnings:\n%s", logs)
	}
}
