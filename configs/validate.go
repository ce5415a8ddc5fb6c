package configs

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// ParseListener parses one "[addr:]port" listener entry ("7999",
// "127.0.0.1:7999", "[::1]:7999"). No address means 0.0.0.0.
func ParseListener(s string) (Listener, error) {
	s = strings.TrimSpace(s)
	addr, portStr := "0.0.0.0", s
	if strings.ContainsAny(s, ":[") {
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			return Listener{}, err
		}
		addr, portStr = h, p
		if addr == "" {
			addr = "0.0.0.0"
		}
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return Listener{}, fmt.Errorf("%q is not a port", s)
	}
	return Listener{Addr: addr, Port: port}, nil
}

// Validate checks the semantic rules on an already decoded Config. Load calls
// it before returning; call it again after changing a Config in code. Every
// error wraps ErrInvalid.
func (c *Config) Validate() error {
	var errs []error
	name := c.File
	fail := func(section, key, value, reason string) {
		file := name
		if c.settings != nil && section != "" {
			file = c.settings.File(section, key)
		}
		errs = append(errs, &ValueError{File: file, Section: section, Key: key, Value: value, Reason: reason})
	}
	r := c.Runner
	if c.HasService(ServiceConnMgr) && len(r.HTTPPorts)+len(r.HTTPSPorts)+len(r.LocalPorts) == 0 {
		errs = append(errs, fmt.Errorf("%s: no server ports configured ([runner] http_port, https_ports or local_ports): %w", name, ErrInvalid))
	}
	for _, l := range append(append([]Listener{}, r.HTTPPorts...), r.HTTPSPorts...) {
		if l.Port < 1 || l.Port > 65535 {
			fail("runner", "http_port", l.String(), "is not a port")
		}
	}
	positive := []struct {
		section, key string
		v            int
	}{
		{"runner", "client_buffer_size", r.ClientBufferSize},
		{"runner", "client_maxconn", r.ClientMaxConn},
		{"runner", "connmgr_processes", r.ConnMgrProcesses},
		{"handler", "push_in_max_headers_size", c.Handler.PushInMaxHeadersSize},
		{"handler", "push_in_max_body_size", c.Handler.PushInMaxBodySize},
		{"handler", "connection_subscription_max", c.Handler.ConnectionSubscriptionMax},
		{"handler", "stream_max_queue_size", c.Handler.StreamMaxQueueSize},
	}
	for _, p := range positive {
		if p.v < 1 {
			fail(p.section, p.key, strconv.Itoa(p.v), "must be at least 1")
		}
	}
	if c.Global.PortOffset < 0 || c.Global.PortOffset > 65535 {
		fail("global", "port_offset", strconv.Itoa(c.Global.PortOffset), "is out of range")
	}
	specs := []struct {
		section, key string
		v            []string
	}{
		{"proxy", "condure_in_specs", c.Proxy.CondureInSpecs},
		{"proxy", "condure_in_stream_specs", c.Proxy.CondureInStreamSpecs},
		{"proxy", "condure_out_specs", c.Proxy.CondureOutSpecs},
		{"proxy", "zurl_out_specs", c.Proxy.ZurlOutSpecs},
		{"proxy", "zurl_out_stream_specs", c.Proxy.ZurlOutStreamSpecs},
		{"proxy", "zurl_in_specs", c.Proxy.ZurlInSpecs},
		{"proxy", "handler_inspect_spec", c.Proxy.HandlerInspectSpec},
		{"proxy", "handler_accept_spec", c.Proxy.HandlerAcceptSpec},
		{"proxy", "handler_retry_in_spec", c.Proxy.HandlerRetryInSpec},
		{"proxy", "handler_ws_control_in_spec", c.Proxy.HandlerWSControlInSpec},
		{"proxy", "handler_ws_control_out_spec", c.Proxy.HandlerWSControlOutSpec},
		{"proxy", "stats_spec", c.Proxy.StatsSpec},
		{"proxy", "command_spec", c.Proxy.CommandSpec},
		{"proxy", "intreq_in_specs", c.Proxy.IntreqInSpecs},
		{"proxy", "intreq_in_stream_specs", c.Proxy.IntreqInStreamSpecs},
		{"proxy", "intreq_out_specs", c.Proxy.IntreqOutSpecs},
		{"handler", "push_in_spec", c.Handler.PushInSpec},
		{"handler", "push_in_sub_specs", c.Handler.PushInSubSpecs},
		{"handler", "stats_spec", c.Handler.StatsSpec},
		{"handler", "command_spec", c.Handler.CommandSpec},
		{"handler", "state_spec", c.Handler.StateSpec},
		{"handler", "proxy_inspect_spec", c.Handler.ProxyInspectSpec},
		{"handler", "proxy_accept_spec", c.Handler.ProxyAcceptSpec},
		{"handler", "proxy_retry_out_spec", c.Handler.ProxyRetryOutSpec},
		{"handler", "proxy_ws_control_in_spec", c.Handler.ProxyWSControlInSpec},
		{"handler", "proxy_ws_control_out_spec", c.Handler.ProxyWSControlOutSpec},
		{"handler", "proxy_stats_spec", c.Handler.ProxyStatsSpec},
		{"handler", "proxy_command_spec", c.Handler.ProxyCommandSpec},
		{"handler", "proxy_intreq_out_specs", c.Handler.ProxyIntreqOutSpecs},
		{"handler", "proxy_intreq_out_stream_specs", c.Handler.ProxyIntreqOutStreamSpecs},
		{"handler", "proxy_intreq_in_specs", c.Handler.ProxyIntreqInSpecs},
	}
	for _, s := range specs {
		for _, v := range s.v {
			if err := CheckSpec(v); err != nil {
				fail(s.section, s.key, v, err.Error())
			}
		}
	}
	return errors.Join(errs...)
}

// CheckSpec checks that v is a ZeroMQ endpoint we can use: ipc://<path>,
// tcp://<host>:<port> or inproc://<name>.
func CheckSpec(v string) error {
	switch {
	case strings.HasPrefix(v, "ipc://"):
		if len(v) == len("ipc://") {
			return errors.New("has an empty ipc path")
		}
	case strings.HasPrefix(v, "inproc://"):
		if len(v) == len("inproc://") {
			return errors.New("has an empty inproc name")
		}
	case strings.HasPrefix(v, "tcp://"):
		_, p, err := net.SplitHostPort(v[len("tcp://"):])
		if err != nil {
			return errors.New("is not tcp://host:port")
		}
		if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
			if p != "*" {
				return errors.New("has a bad port")
			}
		}
	default:
		return errors.New("is not a ZeroMQ spec (ipc://, tcp:// or inproc://)")
	}
	return nil
}
