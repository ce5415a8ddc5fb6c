package proxy

import (
	"strconv"
	"strings"

	"github.com/pushpin-go/pushpin/configs"
)

// notBuilt is a setting the proxy parses but does not act on yet, set to a
// value that asks for behaviour.
type notBuilt struct {
	key, value string
	why        string // what does not happen
}

// settingsNotActedOn lists the pushpin.conf settings, set in cfg, whose
// behaviour is not built yet. New logs each once: a setting that is
// accepted must not look as if it worked. Values that ask for nothing
// (false, empty, the default) are not listed, so a stock pushpin.conf
// gives only the lines for features every Pushpin config turns on.
func settingsNotActedOn(cfg *configs.Config) []notBuilt {
	pc := &cfg.Proxy
	var out []notBuilt
	add := func(key, value, why string) { out = append(out, notBuilt{key: key, value: value, why: why}) }
	if pc.AutoCrossOrigin {
		add("[proxy] auto_cross_origin", "true", "no CORS headers are added to responses")
	}
	if len(pc.OrigHeadersNeedMark) > 0 {
		add("[proxy] orig_headers_need_mark", strings.Join(pc.OrigHeadersNeedMark, ","), "original headers are not marked")
	}
	if pc.LogFrom {
		add("[proxy] log_from", "true", "the proxy writes no per-request log line")
	}
	if pc.LogUserAgent {
		add("[proxy] log_user_agent", "true", "the proxy writes no per-request log line")
	}
	if pc.PrometheusPort != "" {
		add("[proxy] prometheus_port", pc.PrometheusPort, "no Prometheus metrics endpoint is served")
	}
	if v, ok := cfg.Get("proxy", "stats_report_interval"); ok && strings.TrimSpace(v) != "" {
		add("[proxy] stats_report_interval", v, "the proxy publishes no stats")
	}
	if pc.MaxOpenRequests >= 0 {
		add("[proxy] max_open_requests", strconv.Itoa(pc.MaxOpenRequests), "open requests are not limited")
	}
	if v := strings.TrimSpace(pc.UpdatesCheck); v != "" && v != "off" {
		add("[proxy] updates_check", v, "this proxy never checks for updates nor reports usage")
	}
	// Pushpin's handler sends a session back here for a retry (reliable
	// streams: prev-id, Grip-Last); ours does not, and a retry that
	// arrives anyway is dropped (onRetry).
	if len(cfg.Handler.ProxyRetryOutSpec) > 0 {
		add("[handler] proxy_retry_out_spec", strings.Join(cfg.Handler.ProxyRetryOutSpec, ","),
			"sessions are never retried (reliable streams are not built); retries reaching [proxy] handler_retry_in_spec are dropped")
	}
	return out
}

// warnNotActedOn logs settingsNotActedOn, one line each.
func (p *Proxy) warnNotActedOn() {
	for _, n := range settingsNotActedOn(p.cfg) {
		p.log.Warn().Str("setting", n.key).Str("value", n.value).Msg("setting not acted on yet: " + n.why)
	}
}
