package handler

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/configs"
	"github.com/pushpin-go/pushpin/internal/logbuf"
	"github.com/pushpin-go/pushpin/internal/testwait"
)

// warnings returns, per setting, the messages of the "not acted on yet"
// warnings in a zerolog JSON log.
func warnings(t *testing.T, log string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["level"] == "warn" && m["setting"] != nil {
			s := m["setting"].(string)
			out[s] = append(out[s], m["message"].(string))
		}
	}
	return out
}

// Started with the pushpin.conf Pushpin ships (and Debian installs), the
// handler warns once, at start-up, about each [handler] setting in it that
// Pushpin acts on and it does not yet, naming the setting; settings left
// at what means "off" get no warning.
func TestStartupWarnsSettingsNotActedOn(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg, err := configs.Load(configs.Options{ConfigFile: filepath.Join("..", "configs", "pushpin.conf")})
	if err != nil {
		t.Fatal(err)
	}
	// Sockets of this test, not the file's tcp ports.
	test := handlerCfg(dir)
	hc := &cfg.Handler
	hc.CondureOutSpecs, hc.CondureInStreamSpecs, hc.ProxyAcceptSpec = test.Handler.CondureOutSpecs, test.Handler.CondureInStreamSpecs, test.Handler.ProxyAcceptSpec
	hc.PushInSpec, hc.PushInSubSpecs, hc.CommandSpec, hc.PushInHTTPPort = nil, nil, nil, 0
	hc.PrometheusPort = "9090"

	var buf logbuf.Buffer
	r := startHandler(t, cfg, zerolog.New(&buf))
	testwait.For(t, 10*time.Second, func() error {
		if !strings.Contains(buf.String(), `"message":"started"`) {
			return errors.New("handler not started")
		}
		return nil
	})
	r.shutdown(t, 10*time.Second)
	got := warnings(t, buf.String())
	want := []string{"message_rate", "message_hwm", "id_cache_ttl", "stats_spec", "prometheus_port"}
	for _, k := range want {
		msgs := got["[handler] "+k]
		if len(msgs) != 1 {
			t.Errorf("%s: %d warnings %q, want 1", k, len(msgs), msgs)
			continue
		}
		if !strings.HasPrefix(msgs[0], "setting not acted on yet: ") {
			t.Errorf("%s: warning %q does not say the setting is not acted on", k, msgs[0])
		}
	}
	if len(got) != len(want) {
		t.Errorf("warned about %v, want only %v", got, want)
	}
}

// A configuration that sets none of them (every default, plus the values
// that mean "off") warns about nothing; each one set is named.
func TestUnusedSettingsListsOnlyWhatIsSet(t *testing.T) {
	t.Parallel()
	base := "[global]\ninclude=internal.conf\nrundir=run\n[runner]\nservices=pushpin-handler\n[handler]\n"
	load := func(extra string) *configs.Handler {
		t.Helper()
		cfg, err := configs.LoadBytes("test.conf", filepath.Join("..", "configs"), []byte(base+extra), configs.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return &cfg.Handler
	}
	if u := unusedSettings(load("message_rate=-1\nmessage_wait=5000\nid_cache_ttl=0\nshare_all=false\n")); len(u) != 0 {
		t.Errorf("warns about %v", u)
	}
	for _, line := range []string{"message_rate=100", "message_hwm=10", "message_block_size=1000", "message_wait=100",
		"id_cache_ttl=60", "stats_spec=ipc://x", "stats_subscription_ttl=5", "stats_report_interval=5", "stats_format=json",
		"subscription_linger=5", "prometheus_port=9090", "prometheus_prefix=pp", "state_spec=ipc://s", "share_all=true"} {
		key, value, _ := strings.Cut(line, "=")
		u := unusedSettings(load(line + "\n"))
		if len(u) != 1 || u[0].key != key || u[0].value != value {
			t.Errorf("%s: listed %v", line, u)
		}
	}
}
