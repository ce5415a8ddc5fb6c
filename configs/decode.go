package configs

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

func decodeRunner(c *Config, d *decoder, opts Options) {
	r := &c.Runner
	for _, name := range d.list("runner", "services") {
		canon := canonicalService(name)
		switch canon {
		case ServiceConnMgr, ServiceZurl, ServiceProxy, ServiceHandler:
			if !c.HasService(canon) {
				r.Services = append(r.Services, canon)
			}
		case "mongrel2", "m2adapter":
			d.failKey("runner", "services", name, "is not supported: this implementation only has the condure-style connection manager; use condure (or connmgr)")
		default:
			d.failKey("runner", "services", name, "is not a known service (want condure/connmgr, zurl, pushpin-proxy, pushpin-handler)")
		}
	}

	if opts.Port != "" {
		l, err := ParseListener(opts.Port)
		if err != nil {
			d.fail("", "", "--port", opts.Port, "is not a port")
		} else {
			r.HTTPPorts = []Listener{l}
		}
	} else {
		r.HTTPPorts = d.listeners("runner", "http_port")
		r.HTTPSPorts = d.listeners("runner", "https_ports")
		r.LocalPorts = d.list("runner", "local_ports")
	}
	for i, p := range r.LocalPorts {
		r.LocalPorts[i] = absIn(c.Dir, p)
	}
	r.CertsDir = filepath.Join(c.Dir, "runner", "certs")
	if v := d.str("runner", "logdir", ""); v != "" {
		r.LogDir = absIn(c.Dir, v)
	}

	levelSrc, levelFile, levelKey := d.list("runner", "log_level"), d.s.File("runner", "log_level"), "log_level"
	if opts.LogLevel != "" {
		_, items, isList := unescapeINIValue(opts.LogLevel, true)
		if !isList {
			items = []string{strings.TrimSpace(opts.LogLevel)}
		}
		levelSrc, levelFile, levelKey = items, "", "--loglevel"
	}
	lv, err := ParseLogLevels(levelSrc)
	if err != nil {
		sec := "runner"
		if levelFile == "" {
			sec = ""
		}
		d.fail(levelFile, sec, levelKey, strings.Join(levelSrc, ","), err.Error())
	}
	r.LogLevels = lv

	r.ClientBufferSize = d.int("runner", "client_buffer_size", 8192)
	r.ClientMaxConn = d.int("runner", "client_maxconn", 50000)
	r.AllowCompression = d.boolean("runner", "allow_compression", false)
	r.ConnMgrProcesses = d.int("runner", "connmgr_processes", 1)
	r.ClientHeaderTimeout = d.int("runner", "client_header_timeout", -1)
	if r.ClientHeaderTimeout < -1 || r.ClientHeaderTimeout == -1 && d.isSet("runner", "client_header_timeout") {
		d.failKey("runner", "client_header_timeout", strconv.Itoa(r.ClientHeaderTimeout), "must be 0 (off) or more seconds")
	}
	r.CondureBin = d.str("runner", "condure_bin", "condure")
	if v := d.str("runner", "connmgr_bin", ""); v != "" {
		r.CondureBin = v
	}
	r.ZurlBin = d.str("runner", "zurl_bin", "zurl")
	r.Mongrel2Bin = d.str("runner", "mongrel2_bin", "mongrel2")
	r.M2shBin = d.str("runner", "m2sh_bin", "m2sh")
}

func (d *decoder) listeners(section, key string) []Listener {
	var out []Listener
	for _, it := range d.list(section, key) {
		l, err := ParseListener(it)
		if err != nil {
			d.failKey(section, key, it, "is not a port")
			continue
		}
		out = append(out, l)
	}
	return out
}

func decodeProxy(c *Config, d *decoder) {
	p := &c.Proxy
	if v := d.str("proxy", "routesfile", ""); v != "" {
		p.RoutesFile = absIn(c.Dir, v)
	}
	p.Debug = d.boolean("proxy", "debug", false)
	p.AutoCrossOrigin = d.boolean("proxy", "auto_cross_origin", false)
	p.AcceptXForwardedProtocol = d.boolean("proxy", "accept_x_forwarded_protocol", false)
	switch strings.TrimSpace(d.str("proxy", "set_x_forwarded_protocol", "")) {
	case "proto-only":
		p.SetXForwardedProtocol = XFPProtoOnly
	case "true":
		p.SetXForwardedProtocol = XFPBoth
	default: // Pushpin compares with "true" and "proto-only" only
		p.SetXForwardedProtocol = XFPNone
	}
	p.XForwardedFor = d.list("proxy", "x_forwarded_for")
	p.XForwardedForTrusted = d.list("proxy", "x_forwarded_for_trusted")
	for _, key := range []string{"x_forwarded_for", "x_forwarded_for_trusted"} {
		for _, it := range d.list("proxy", key) {
			if it != "append" && !strings.HasPrefix(it, "truncate:") {
				d.failKey("proxy", key, it, `is not "append" or "truncate:N"`)
			}
		}
	}
	p.OrigHeadersNeedMark = d.list("proxy", "orig_headers_need_mark")
	p.AcceptPushpinRoute = d.boolean("proxy", "accept_pushpin_route", false)
	p.LogFrom = d.boolean("proxy", "log_from", false)
	p.LogUserAgent = d.boolean("proxy", "log_user_agent", false)
	p.SigIss = d.str("proxy", "sig_iss", "pushpin")
	p.SigKey = d.key(c.Dir, "proxy", "sig_key")
	p.UpstreamKey = d.key(c.Dir, "proxy", "upstream_key")
	p.SockJSURL = d.str("proxy", "sockjs_url", "")
	p.UpdatesCheck = d.str("proxy", "updates_check", "")
	p.OrganizationName = d.str("proxy", "organization_name", "")
	p.StatsReportInterval = d.int("proxy", "stats_report_interval", 10)
	p.PrometheusPort = d.str("proxy", "prometheus_port", "")
	p.PrometheusPrefix = d.str("proxy", "prometheus_prefix", "")
	p.IPCFileMode = d.octal("proxy", "ipc_file_mode")
	p.MaxOpenRequests = d.int("proxy", "max_open_requests", -1)

	p.CondureInSpecs = d.list("proxy", "condure_in_specs")
	p.CondureInStreamSpecs = d.list("proxy", "condure_in_stream_specs")
	p.CondureOutSpecs = d.list("proxy", "condure_out_specs")
	p.ZurlOutSpecs = d.list("proxy", "zurl_out_specs")
	p.ZurlOutStreamSpecs = d.list("proxy", "zurl_out_stream_specs")
	p.ZurlInSpecs = d.list("proxy", "zurl_in_specs")
	p.HandlerInspectSpec = d.list("proxy", "handler_inspect_spec")
	p.HandlerAcceptSpec = d.list("proxy", "handler_accept_spec")
	p.HandlerRetryInSpec = d.list("proxy", "handler_retry_in_spec")
	p.HandlerWSControlInSpec = d.list("proxy", "handler_ws_control_in_spec")
	p.HandlerWSControlOutSpec = d.list("proxy", "handler_ws_control_out_spec")
	p.StatsSpec = d.list("proxy", "stats_spec")
	p.CommandSpec = d.list("proxy", "command_spec")
	p.IntreqInSpecs = d.list("proxy", "intreq_in_specs")
	p.IntreqInStreamSpecs = d.list("proxy", "intreq_in_stream_specs")
	p.IntreqOutSpecs = d.list("proxy", "intreq_out_specs")
}

// key decodes a Grip-Sig key: "base64:<data>", "file:<path>" (relative to the
// config dir) or the string itself. Empty means unset.
func (d *decoder) key(dir, section, name string) []byte {
	v := d.str(section, name, "")
	switch {
	case v == "":
		return nil
	case strings.HasPrefix(v, "base64:"):
		b, err := base64.StdEncoding.DecodeString(v[len("base64:"):])
		if err != nil {
			d.failKey(section, name, v, "is not valid base64")
			return nil
		}
		return b
	case strings.HasPrefix(v, "file:"):
		b, err := os.ReadFile(absIn(dir, v[len("file:"):]))
		if err != nil {
			d.failKey(section, name, v, fmt.Sprintf("cannot be read: %v", err))
			return nil
		}
		return b
	}
	return []byte(v)
}

func decodeHandler(c *Config, d *decoder) {
	h := &c.Handler
	h.PushInSpec = d.list("handler", "push_in_spec")
	h.PushInSubSpecs = append(d.list("handler", "push_in_sub_specs"), d.list("handler", "push_in_sub_spec")...)
	h.PushInSubConnect = d.boolean("handler", "push_in_sub_connect", false)
	h.PushInHTTPAddr = d.str("handler", "push_in_http_addr", "")
	if v, ok := d.s.Get("handler", "push_in_http_port"); ok && strings.TrimSpace(v) != "" {
		if port := d.int("handler", "push_in_http_port", 0); port > 0 && port+c.Global.PortOffset <= 65535 {
			h.PushInHTTPPort = port + c.Global.PortOffset
		} else {
			d.failKey("handler", "push_in_http_port", v, fmt.Sprintf("is not a port (with port_offset %d)", c.Global.PortOffset))
		}
	}
	// 1.36 reads push_in_max_*; its shipped conf documents
	// push_in_http_max_*, so accept both (the 1.36 name wins).
	h.PushInMaxHeadersSize = d.int("handler", "push_in_http_max_headers_size", 10000)
	h.PushInMaxHeadersSize = d.int("handler", "push_in_max_headers_size", h.PushInMaxHeadersSize)
	h.PushInMaxBodySize = d.int("handler", "push_in_http_max_body_size", 1000000)
	h.PushInMaxBodySize = d.int("handler", "push_in_max_body_size", h.PushInMaxBodySize)
	h.StatsSpec = d.list("handler", "stats_spec")
	h.CommandSpec = d.list("handler", "command_spec")
	h.StateSpec = d.list("handler", "state_spec")
	h.IPCFileMode = d.octal("handler", "ipc_file_mode")
	h.ShareAll = d.boolean("handler", "share_all", false)
	h.MessageRate = d.int("handler", "message_rate", -1)
	h.MessageHWM = d.int("handler", "message_hwm", -1)
	h.MessageBlockSize = d.int("handler", "message_block_size", -1)
	h.MessageWait = d.int("handler", "message_wait", 5000)
	h.IDCacheTTL = d.int("handler", "id_cache_ttl", 0)
	h.ConnectionSubscriptionMax = d.int("handler", "connection_subscription_max", 20)
	h.StreamMaxQueueSize = d.int("handler", "stream_max_queue_size", 1<<20)
	h.SubscriptionLinger = d.int("handler", "subscription_linger", 60)
	h.StatsSubscriptionTTL = d.int("handler", "stats_subscription_ttl", 60)
	h.StatsReportInterval = d.int("handler", "stats_report_interval", 10)
	h.StatsFormat = d.str("handler", "stats_format", "tnetstring")
	if h.StatsFormat != "tnetstring" && h.StatsFormat != "json" {
		d.failKey("handler", "stats_format", h.StatsFormat, `is not "tnetstring" or "json"`)
	}
	h.PrometheusPort = d.str("handler", "prometheus_port", "")
	h.PrometheusPrefix = d.str("handler", "prometheus_prefix", "")

	h.ProxyInspectSpec = d.list("handler", "proxy_inspect_spec")
	h.ProxyAcceptSpec = d.list("handler", "proxy_accept_spec")
	h.ProxyRetryOutSpec = d.list("handler", "proxy_retry_out_spec")
	h.ProxyWSControlInSpec = d.list("handler", "proxy_ws_control_in_spec")
	h.ProxyWSControlOutSpec = d.list("handler", "proxy_ws_control_out_spec")
	h.ProxyStatsSpec = d.list("handler", "proxy_stats_spec")
	h.ProxyCommandSpec = d.list("handler", "proxy_command_spec")
	h.ProxyIntreqOutSpecs = d.list("handler", "proxy_intreq_out_specs")
	h.ProxyIntreqOutStreamSpecs = d.list("handler", "proxy_intreq_out_stream_specs")
	h.ProxyIntreqInSpecs = d.list("handler", "proxy_intreq_in_specs")
	h.CondureInStreamSpecs = d.list("proxy", "condure_in_stream_specs")
	if h.CondureInStreamSpecs == nil {
		h.CondureInStreamSpecs = d.list("handler", "condure_in_stream_specs")
	}
	h.CondureOutSpecs = d.list("proxy", "condure_out_specs")
	if h.CondureOutSpecs == nil {
		h.CondureOutSpecs = d.list("handler", "condure_out_specs")
	}
}

func canonicalService(name string) string {
	if name == "connmgr" || name == "pushpin-connmgr" {
		return ServiceConnMgr
	}
	if name == "pushpin-zurl" {
		return ServiceZurl
	}
	return name
}
