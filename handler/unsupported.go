package handler

import (
	"strconv"
	"strings"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/configs"
)

// unusedSetting is a [handler] setting that is parsed but not acted on yet.
type unusedSetting struct {
	key, value string
	what       string // what Pushpin would do with it and we do not
}

// unusedSettings lists the [handler] settings of cfg that Pushpin would act
// on and this handler does not (yet), each only when it is set to something
// other than "off": an absent setting, or one at the value that means
// nothing to do, is not worth a warning. Debian's pushpin.conf sets
// message_rate, message_hwm, id_cache_ttl and stats_spec, so a stock
// install is told about those four: Pushpin given that file would
// rate-limit deliveries, bound its queue, drop repeated item ids and
// publish stats, and this handler does none of it. The internal.conf
// socket specs of features not built (proxy_inspect_spec,
// proxy_retry_out_spec, proxy_stats_spec, proxy_intreq_*) are not listed:
// every install sets them and no operator can act on a warning about them.
// proxy_ws_control_in_spec, proxy_ws_control_out_spec and
// proxy_command_spec are acted on (WebSocket sessions, refresh), and
// connection_subscription_max bounds WebSocket subscriptions too.
func unusedSettings(hc *configs.Handler) []unusedSetting {
	var out []unusedSetting
	add := func(set bool, key, value, what string) {
		if set {
			out = append(out, unusedSetting{key, value, what})
		}
	}
	itoa := strconv.Itoa
	add(hc.MessageRate >= 0, "message_rate", itoa(hc.MessageRate), "publishes are delivered without a rate limit")
	add(hc.MessageHWM >= 0, "message_hwm", itoa(hc.MessageHWM), "no high-water mark on publishes waiting for the rate limit")
	add(hc.MessageBlockSize >= 0, "message_block_size", itoa(hc.MessageBlockSize), "no rate limiting by message size")
	add(hc.MessageWait != 5000, "message_wait", itoa(hc.MessageWait), "no rate limiting, so nothing waits")
	add(hc.IDCacheTTL > 0, "id_cache_ttl", itoa(hc.IDCacheTTL), "publishes that repeat an item id are not dropped")
	add(len(hc.StatsSpec) > 0, "stats_spec", strings.Join(hc.StatsSpec, ","), "no stats are published")
	add(hc.StatsSubscriptionTTL != 60, "stats_subscription_ttl", itoa(hc.StatsSubscriptionTTL), "no stats are published")
	add(hc.StatsReportInterval != 10, "stats_report_interval", itoa(hc.StatsReportInterval), "no stats are published")
	add(hc.StatsFormat != "tnetstring", "stats_format", hc.StatsFormat, "no stats are published")
	add(hc.SubscriptionLinger != 60, "subscription_linger", itoa(hc.SubscriptionLinger), "no subscription stats are published")
	add(hc.PrometheusPort != "", "prometheus_port", hc.PrometheusPort, "no Prometheus metrics are served")
	add(hc.PrometheusPrefix != "", "prometheus_prefix", hc.PrometheusPrefix, "no Prometheus metrics are served")
	add(len(hc.StateSpec) > 0, "state_spec", strings.Join(hc.StateSpec, ","), "no state socket is opened")
	add(hc.ShareAll, "share_all", "true", "sessions are not shared with other handlers")
	return out
}

// warnUnused logs, once per setting, that a [handler] setting is not acted
// on yet.
func warnUnused(log zerolog.Logger, hc *configs.Handler) {
	for _, u := range unusedSettings(hc) {
		// The proxy's and the runner's warnings read the same way.
		log.Warn().Str("setting", "[handler] "+u.key).Str("value", u.value).
			Msg("setting not acted on yet: " + u.what)
	}
}
