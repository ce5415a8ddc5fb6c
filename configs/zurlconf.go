package configs

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ZurlConfig is the [General] section of a zurl.conf: what the runner writes
// into {rundir}/{file_prefix}zurl.conf and our zurl program reads.
type ZurlConfig struct {
	InstanceID      string   // "" means a random {uuid}
	InSpec          string   // bind PULL: first packet of requests
	InStreamSpec    string   // bind ROUTER: continuing packets
	OutSpec         string   // bind PUB: responses
	InReqSpec       string   // bind ROUTER for req mode; "" = off
	DefPolicy       string   // "allow" or "deny"
	Allow           []string // host patterns (* wildcards)
	Deny            []string
	MaxOpenRequests int
	BufferSize      int
	Timeout         int // seconds before an inactive request expires
	InHWM           int
	OutHWM          int
}

// DefaultZurlConfig returns zurl's defaults with the upstream 1.36 template's
// policy values.
func DefaultZurlConfig() ZurlConfig {
	return ZurlConfig{
		DefPolicy:       "allow",
		Deny:            []string{"127.*", "10.*", "192.168.*", "*.local"},
		MaxOpenRequests: 2000,
		BufferSize:      200000,
		Timeout:         600,
		InHWM:           1000,
		OutHWM:          1000,
	}
}

// ZurlConfig returns the zurl configuration the runner generates for c
// (Pushpin's runner/zurl.conf.template with {rundir} and {ipc_prefix}).
func (c *Config) ZurlConfig() ZurlConfig {
	z := DefaultZurlConfig()
	base := "ipc://" + filepath.Join(c.Global.RunDir, c.Global.IPCPrefix)
	z.InSpec = base + "zurl-in"
	z.InStreamSpec = base + "zurl-in-stream"
	z.OutSpec = base + "zurl-out"
	return z
}

// Render returns the zurl.conf text, laid out like Pushpin's template.
func (z ZurlConfig) Render() []byte {
	var b strings.Builder
	w := func(comment, key, value string) {
		if comment != "" {
			fmt.Fprintf(&b, "# %s\n", comment)
		}
		fmt.Fprintf(&b, "%s=%s\n", key, value)
	}
	b.WriteString("[General]\n")
	w("instance routing id. keep blank for random. set for better error recovery", "instance_id", iniQuote(z.InstanceID))
	b.WriteString("\n")
	w("bind PULL for initiating a request", "in_spec", iniQuote(z.InSpec))
	b.WriteString("\n")
	w("bind DEALER for continuing a request", "in_stream_spec", iniQuote(z.InStreamSpec))
	b.WriteString("\n")
	w("bind PUB for responding", "out_spec", iniQuote(z.OutSpec))
	b.WriteString("\n")
	w("bind ROUTER for handling non-streamed requests/responses", "in_req_spec", iniQuote(z.InReqSpec))
	b.WriteString("\n")
	w(`default policy, one of "allow" or "deny"`, "defpolicy", iniQuote(z.DefPolicy))
	b.WriteString("\n")
	w("hosts to allow", "allow", iniList(z.Allow))
	b.WriteString("\n")
	w("hosts to deny", "deny", iniList(z.Deny))
	b.WriteString("\n")
	w("worker count", "max_open_requests", strconv.Itoa(z.MaxOpenRequests))
	b.WriteString("\n")
	w("input buffer size per request", "buffer_size", strconv.Itoa(z.BufferSize))
	b.WriteString("\n")
	w("expiration time (in seconds) for inactive requests", "timeout", strconv.Itoa(z.Timeout))
	b.WriteString("\n")
	w("advanced", "in_hwm", strconv.Itoa(z.InHWM))
	w("", "out_hwm", strconv.Itoa(z.OutHWM))
	return []byte(b.String())
}

// WriteZurlConf renders c's zurl.conf to c.ZurlConfPath() and returns the path.
func (c *Config) WriteZurlConf() (string, error) {
	p := c.ZurlConfPath()
	if err := os.WriteFile(p, c.ZurlConfig().Render(), 0o644); err != nil {
		return "", fmt.Errorf("writing zurl config: %w", err)
	}
	return p, nil
}

// ParseZurlConf reads a zurl.conf ([General] keys; absent keys keep
// DefaultZurlConfig values). name is used in messages.
func ParseZurlConf(name string, data []byte) (ZurlConfig, error) {
	ini := ParseINI(name, data)
	z := DefaultZurlConfig()
	d := &decoder{s: &Settings{main: ini, mainName: name}}
	z.InstanceID = d.str("", "instance_id", "")
	z.InSpec = d.str("", "in_spec", "")
	z.InStreamSpec = d.str("", "in_stream_spec", "")
	z.OutSpec = d.str("", "out_spec", "")
	z.InReqSpec = d.str("", "in_req_spec", "")
	z.DefPolicy = d.str("", "defpolicy", z.DefPolicy)
	if z.DefPolicy != "allow" && z.DefPolicy != "deny" {
		d.fail(name, "General", "defpolicy", z.DefPolicy, `is not "allow" or "deny"`)
	}
	if _, ok := ini.Get("", "allow"); ok {
		z.Allow = d.list("", "allow")
	}
	if _, ok := ini.Get("", "deny"); ok {
		z.Deny = d.list("", "deny")
	}
	z.MaxOpenRequests = d.int("", "max_open_requests", z.MaxOpenRequests)
	z.BufferSize = d.int("", "buffer_size", z.BufferSize)
	z.Timeout = d.int("", "timeout", z.Timeout)
	z.InHWM = d.int("", "in_hwm", z.InHWM)
	z.OutHWM = d.int("", "out_hwm", z.OutHWM)
	for key, v := range map[string]string{"in_spec": z.InSpec, "in_stream_spec": z.InStreamSpec, "out_spec": z.OutSpec, "in_req_spec": z.InReqSpec} {
		if v != "" {
			if err := CheckSpec(v); err != nil {
				d.fail(name, "General", key, v, err.Error())
			}
		}
	}
	if z.InSpec == "" && z.InReqSpec == "" {
		d.fail(name, "General", "in_spec", "", "is not set (nor in_req_spec)")
	}
	if len(d.errs) > 0 {
		return z, joinErrs(d.errs)
	}
	return z, nil
}

// LoadZurlConf reads and parses a zurl.conf file.
func LoadZurlConf(path string) (ZurlConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return ZurlConfig{}, fmt.Errorf("reading zurl config: %w", err)
	}
	return ParseZurlConf(path, data)
}

// iniQuote quotes a value when QSettings would otherwise split, trim or
// comment it out.
func iniQuote(s string) string {
	if strings.HasPrefix(s, "@") {
		s = "@" + s // stringToVariant would eat one '@'
	}
	if s == "" || !strings.ContainsAny(s, ",;\"\\ \t=#\n\r") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

func iniList(items []string) string {
	q := make([]string, len(items))
	for i, it := range items {
		q[i] = iniQuote(it)
	}
	return strings.Join(q, ",")
}
