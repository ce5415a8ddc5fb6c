package configs

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeConf writes a config (and optional extra files) into a temp dir.
func writeConf(t *testing.T, conf string, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range extra {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "pushpin.conf")
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const minimal = "[global]\ninclude=internal.conf\nrundir=run\n[runner]\nservices=condure,zurl,pushpin-proxy,pushpin-handler\nhttp_port=7999\n"

func mustLoad(t *testing.T, path string, opts Options) *Config {
	t.Helper()
	opts.ConfigFile = path
	c, err := Load(opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func TestExampleConfig(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "pushpin.conf", Options{})
	wd, _ := os.Getwd()
	if c.Global.RunDir != filepath.Join(wd, "run") || c.Runner.LogDir != filepath.Join(wd, "log") {
		t.Errorf("rundir/logdir = %q %q", c.Global.RunDir, c.Runner.LogDir)
	}
	if want := []string{ServiceConnMgr, ServiceZurl, ServiceProxy, ServiceHandler}; !reflect.DeepEqual(c.Runner.Services, want) {
		t.Errorf("services = %v", c.Runner.Services)
	}
	if !reflect.DeepEqual(c.Runner.HTTPPorts, []Listener{{"0.0.0.0", 7999}}) {
		t.Errorf("http ports = %v", c.Runner.HTTPPorts)
	}
	if c.Handler.PushInHTTPAddr != "127.0.0.1" || c.Handler.PushInHTTPPort != 5561 {
		t.Errorf("push_in_http = %s:%d", c.Handler.PushInHTTPAddr, c.Handler.PushInHTTPPort)
	}
	if c.Proxy.RoutesFile != filepath.Join(wd, "routes") || string(c.Proxy.SigKey) != "changeme" {
		t.Errorf("routes %q key %q", c.Proxy.RoutesFile, c.Proxy.SigKey)
	}
	if c.Runner.CondureBin != "pushpin-connmgr" || c.Runner.ConnMgrProcesses != 1 {
		t.Errorf("connmgr bin %q processes %d", c.Runner.CondureBin, c.Runner.ConnMgrProcesses)
	}
	p := "ipc://" + filepath.Join(wd, "run") + "/pushpin-"
	if !reflect.DeepEqual(c.Proxy.ZurlOutSpecs, []string{p + "zurl-in"}) ||
		!reflect.DeepEqual(c.Proxy.CondureInSpecs, []string{p + "condure-out"}) ||
		!reflect.DeepEqual(c.Handler.StatsSpec, []string{p + "stats"}) ||
		!reflect.DeepEqual(c.Handler.ProxyWSControlInSpec, []string{p + "ws-control-out"}) {
		t.Errorf("specs: %v %v %v", c.Proxy.ZurlOutSpecs, c.Proxy.CondureInSpecs, c.Handler.StatsSpec)
	}
	if c.Proxy.SetXForwardedProtocol != XFPProtoOnly || c.Handler.IDCacheTTL != 60 || c.Handler.MessageRate != 2500 {
		t.Errorf("xfp %v idttl %d rate %d", c.Proxy.SetXForwardedProtocol, c.Handler.IDCacheTTL, c.Handler.MessageRate)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %q", c.Warnings)
	}
}

// Every socket spec of internal.conf must land in a typed field.
func TestInternalSpecsAllTyped(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, writeConf(t, minimal, nil), Options{})
	ini := ParseINI("internal.conf", InternalConf)
	for _, sec := range []string{"proxy", "handler"} {
		for _, k := range ini.Keys(sec) {
			if strings.HasPrefix(k, "m2a_") {
				continue
			}
			want, _ := c.List(sec, k)
			if !containsList(c, want) {
				t.Errorf("[%s] %s = %v not in any typed field", sec, k, want)
			}
		}
	}
}

func containsList(c *Config, want []string) bool {
	for _, s := range []any{c.Proxy, c.Handler} {
		v := reflect.ValueOf(s)
		for i := 0; i < v.NumField(); i++ {
			if l, ok := v.Field(i).Interface().([]string); ok && reflect.DeepEqual(l, want) {
				return true
			}
		}
	}
	return false
}

func TestDefaultsWhenAbsent(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, writeConf(t, "[global]\nrundir=/tmp/r\n[runner]\nhttp_port=80\n", nil), Options{})
	if c.Global.IPCPrefix != "pushpin-" || c.Global.StatsConnectionTTL != 120 || c.Runner.ClientBufferSize != 8192 ||
		c.Runner.ClientMaxConn != 50000 || c.Runner.LogLevels.Default != 2 || c.Proxy.SigIss != "pushpin" ||
		c.Handler.MessageRate != -1 || c.Handler.MessageWait != 5000 || c.Handler.PushInHTTPPort != 0 ||
		c.Handler.StatsFormat != "tnetstring" || c.Handler.PushInMaxBodySize != 1000000 || c.Proxy.MaxOpenRequests != -1 ||
		c.Runner.CondureBin != "condure" || c.Runner.ConnMgrProcesses != 1 || c.Proxy.IPCFileMode != -1 ||
		c.Handler.StreamMaxQueueSize != 1<<20 {
		t.Errorf("defaults wrong: %+v %+v %+v", c.Runner, c.Proxy, c.Handler)
	}
	if c.Proxy.ZurlOutSpecs != nil {
		t.Errorf("no include, yet specs %v", c.Proxy.ZurlOutSpecs)
	}
}

func TestIncludes(t *testing.T) {
	t.Parallel()
	t.Run("libdir literal is embedded", func(t *testing.T) {
		t.Parallel()
		c := mustLoad(t, writeConf(t, "[global]\ninclude={libdir}/internal.conf\nrundir=/r\n[runner]\nhttp_port=1\n", nil), Options{LibDir: "/nonexistent"})
		if c.Global.Include != InternalConfName || c.Proxy.ZurlInSpecs[0] != "ipc:///r/pushpin-zurl-out" {
			t.Errorf("include %q zurl %v", c.Global.Include, c.Proxy.ZurlInSpecs)
		}
	})
	t.Run("relative file, main wins", func(t *testing.T) {
		t.Parallel()
		p := writeConf(t, "[global]\ninclude=sub/extra.conf\nrundir=/r\n[runner]\nhttp_port=1\n[proxy]\nsig_iss=main\n",
			map[string]string{"sub/extra.conf": "[proxy]\nsig_iss=inc\nsockjs_url=from-include\ncommand_spec=tcp://127.0.0.1:9\n"})
		c := mustLoad(t, p, Options{})
		if c.Proxy.SigIss != "main" || c.Proxy.SockJSURL != "from-include" {
			t.Errorf("sig_iss %q sockjs %q", c.Proxy.SigIss, c.Proxy.SockJSURL)
		}
		if !strings.HasSuffix(c.Global.Include, "sub/extra.conf") {
			t.Errorf("include %q", c.Global.Include)
		}
	})
	t.Run("explicit libdir with its own internal.conf", func(t *testing.T) {
		t.Parallel()
		p := writeConf(t, "[global]\nlibdir=lib\ninclude={libdir}/internal.conf\nrundir=/r\n[runner]\nhttp_port=1\n",
			map[string]string{"lib/internal.conf": "[proxy]\nzurl_in_specs=ipc:///custom\n"})
		c := mustLoad(t, p, Options{})
		if !reflect.DeepEqual(c.Proxy.ZurlInSpecs, []string{"ipc:///custom"}) {
			t.Errorf("zurl_in_specs %v", c.Proxy.ZurlInSpecs)
		}
	})
	t.Run("missing include", func(t *testing.T) {
		t.Parallel()
		_, err := Load(Options{ConfigFile: writeConf(t, "[global]\ninclude=nope.conf\nrundir=/r\n[runner]\nhttp_port=1\n", nil)})
		if err == nil || !strings.Contains(err.Error(), "[global] include") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestSubstitutionsAndRundir(t *testing.T) {
	t.Parallel()
	p := writeConf(t, "[global]\nlibdir=/L\nipc_prefix=x-\n[runner]\nrundir=rr\nhttp_port=1\n[proxy]\nsockjs_url={libdir}|{rundir}|{ipc_prefix}\n", nil)
	c := mustLoad(t, p, Options{})
	want := "/L|" + filepath.Join(filepath.Dir(p), "rr") + "|x-"
	if c.Proxy.SockJSURL != want {
		t.Errorf("got %q want %q", c.Proxy.SockJSURL, want)
	}
	if v, _ := c.Get("proxy", "sockjs_url"); v != want {
		t.Errorf("Get = %q", v)
	}
	// [global] rundir beats the deprecated [runner] rundir.
	c = mustLoad(t, writeConf(t, "[global]\nrundir=/g\n[runner]\nrundir=/r\nhttp_port=1\n", nil), Options{})
	if c.Global.RunDir != "/g" {
		t.Errorf("rundir %q", c.Global.RunDir)
	}
}

func TestPortOffset(t *testing.T) {
	t.Parallel()
	conf := "[global]\ninclude=internal.conf\nrundir=/r\nport_offset=30000\n[runner]\nhttp_port=7999\n[handler]\n" +
		"push_in_spec=tcp://127.0.0.1:5560\npush_in_sub_specs=tcp://127.0.0.1:5562,tcp://[::1]:5570\n" +
		"command_spec=tcp://127.0.0.1:5563\npush_in_http_port=5561\n"
	c := mustLoad(t, writeConf(t, conf, nil), Options{})
	if c.Handler.PushInSpec[0] != "tcp://127.0.0.1:35560" || c.Handler.CommandSpec[0] != "tcp://127.0.0.1:35563" ||
		!reflect.DeepEqual(c.Handler.PushInSubSpecs, []string{"tcp://127.0.0.1:35562", "tcp://[::1]:35570"}) ||
		c.Handler.PushInHTTPPort != 35561 {
		t.Errorf("offset not applied: %v %v %v %d", c.Handler.PushInSpec, c.Handler.CommandSpec, c.Handler.PushInSubSpecs, c.Handler.PushInHTTPPort)
	}
	if c.Runner.HTTPPorts[0].Port != 7999 {
		t.Errorf("http_port must not be offset: %v", c.Runner.HTTPPorts)
	}
	if c.Proxy.StatsSpec[0] != "ipc:///r/pushpin-proxy-stats" {
		t.Errorf("ipc spec changed: %v", c.Proxy.StatsSpec)
	}
	for in, want := range map[string]string{
		"tcp://h:1 tcp://h:2": "tcp://h:11 tcp://h:2", "tcp://h": "tcp://h", "ipc://x:5": "ipc://x:5", "tcp://h:/x": "tcp://h:/x",
	} {
		if got := AddPortOffset(in, 10); got != want {
			t.Errorf("AddPortOffset(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIDOption(t *testing.T) {
	t.Parallel()
	p := writeConf(t, minimal+"[handler]\ncommand_spec=tcp://127.0.0.1:5563\npush_in_http_port=5561\n", nil)
	id := 3
	c := mustLoad(t, p, Options{ID: &id})
	if c.Global.IPCPrefix != "p3-" || c.Global.FilePrefix != "p3-" || c.Global.PortOffset != 30 {
		t.Fatalf("global %+v", c.Global)
	}
	if c.Handler.CommandSpec[0] != "tcp://127.0.0.1:5593" || c.Handler.PushInHTTPPort != 5591 {
		t.Errorf("offset: %v %d", c.Handler.CommandSpec, c.Handler.PushInHTTPPort)
	}
	dir := filepath.Dir(p)
	if !strings.HasSuffix(c.Proxy.CondureInSpecs[0], "/run/p3-condure-out") ||
		c.PIDFile("condure") != filepath.Join(dir, "run", "p3-condure.pid") ||
		c.ZurlConfPath() != filepath.Join(dir, "run", "p3-zurl.conf") || c.LogFile("zurl") != "" {
		t.Errorf("prefixes: %v %s %s", c.Proxy.CondureInSpecs, c.PIDFile("condure"), c.ZurlConfPath())
	}
	// Explicit --ipc-prefix and --port-offset win over --id.
	off := 7
	c = mustLoad(t, p, Options{ID: &id, IPCPrefix: "q-", PortOffset: &off})
	if c.Global.IPCPrefix != "q-" || c.Global.FilePrefix != "p3-" || c.Global.PortOffset != 7 {
		t.Errorf("overrides: %+v", c.Global)
	}
}

func TestBoolAndIntRules(t *testing.T) {
	t.Parallel()
	//nolint:gocritic // mapKey: " false " is the case that surrounding spaces are ignored
	for v, want := range map[string]bool{"": false, "0": false, "false": false, "FALSE": false, " false ": false,
		"1": true, "true": true, "yes": true, "no": true, "off": true} {
		if ParseBool(v) != want {
			t.Errorf("ParseBool(%q) != %v", v, want)
		}
	}
	c := mustLoad(t, writeConf(t, minimal+"[proxy]\ndebug=no\nlog_from=0\n[handler]\nmessage_rate= 42 \nmessage_hwm=\n", nil), Options{})
	if !c.Proxy.Debug || c.Proxy.LogFrom || c.Handler.MessageRate != 42 || c.Handler.MessageHWM != -1 {
		t.Errorf("debug %v logfrom %v rate %d hwm %d", c.Proxy.Debug, c.Proxy.LogFrom, c.Handler.MessageRate, c.Handler.MessageHWM)
	}
}

func TestListsAndQuotes(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, writeConf(t, minimal+"[proxy]\nx_forwarded_for=truncate:0, append\norig_headers_need_mark=\"A,B\",C\nsig_key=\"k,1\"\n", nil), Options{})
	if !reflect.DeepEqual(c.Proxy.XForwardedFor, []string{"truncate:0", "append"}) ||
		!reflect.DeepEqual(c.Proxy.OrigHeadersNeedMark, []string{"A,B", "C"}) || string(c.Proxy.SigKey) != "k,1" {
		t.Errorf("%q %q %q", c.Proxy.XForwardedFor, c.Proxy.OrigHeadersNeedMark, c.Proxy.SigKey)
	}
	c = mustLoad(t, writeConf(t, minimal+"[runner]\n", nil), Options{})
	if c.Proxy.XForwardedFor != nil {
		t.Errorf("absent list = %q", c.Proxy.XForwardedFor)
	}
}

func TestListeners(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, writeConf(t, "[global]\nrundir=/r\n[runner]\nservices=connmgr\nhttp_port=7999,127.0.0.1:8000,[::1]:8001\nhttps_ports=443\nlocal_ports={rundir}/s\n", nil), Options{})
	want := []Listener{{"0.0.0.0", 7999}, {"127.0.0.1", 8000}, {"::1", 8001}}
	if !reflect.DeepEqual(c.Runner.HTTPPorts, want) || c.Runner.HTTPSPorts[0].Port != 443 || c.Runner.LocalPorts[0] != "/r/s" {
		t.Errorf("%v %v %v", c.Runner.HTTPPorts, c.Runner.HTTPSPorts, c.Runner.LocalPorts)
	}
	if c.Runner.HTTPPorts[2].String() != "[::1]:8001" || !c.HasService("condure") || !c.HasService("connmgr") {
		t.Errorf("string %q services %v", c.Runner.HTTPPorts[2].String(), c.Runner.Services)
	}
	c = mustLoad(t, writeConf(t, "[global]\nrundir=/r\n[runner]\nservices=condure\nhttp_port=1\nhttps_ports=2\n", nil), Options{Port: "127.0.0.1:9000"})
	if !reflect.DeepEqual(c.Runner.HTTPPorts, []Listener{{"127.0.0.1", 9000}}) || c.Runner.HTTPSPorts != nil {
		t.Errorf("--port: %v %v", c.Runner.HTTPPorts, c.Runner.HTTPSPorts)
	}
}

func TestValidationMessages(t *testing.T) {
	t.Parallel()
	cases := []struct{ conf, want string }{
		{"[global]\nrundir=/r\n[runner]\nhttp_port=abc\n", `pushpin.conf: [runner] http_port: "abc" is not a port`},
		{"[global]\nrundir=/r\n[runner]\nhttp_port=70000\n", `[runner] http_port: "70000" is not a port`},
		{"[global]\nrundir=/r\n[runner]\nservices=condure,bogus\nhttp_port=1\n", `[runner] services: "bogus" is not a known service`},
		{"[global]\nrundir=/r\n[runner]\nservices=mongrel2,m2adapter\n", `[runner] services: "mongrel2" is not supported`},
		{"[global]\nrundir=/r\n[runner]\nservices=condure\n", `no server ports configured`},
		{"[global]\nrundir=/r\n[runner]\nhttp_port=1\nclient_buffer_size=big\n", `[runner] client_buffer_size: "big" is not an integer`},
		{"[global]\nrundir=/r\n[runner]\nhttp_port=1\nlog_level=2,proxy:x\n", `[runner] log_level: "2,proxy:x" is not a log level list`},
		{"[global]\nrundir=/r\n[runner]\nhttp_port=1\nconnmgr_processes=0\n", `[runner] connmgr_processes: "0" must be at least 1`},
		{"[global]\nrundir=/r\n[runner]\nhttp_port=1\n[handler]\nstream_max_queue_size=0\n", `[handler] stream_max_queue_size: "0" must be at least 1`},
		{"[global]\nrundir=/r\n[handler]\npush_in_http_port=x\n", `[handler] push_in_http_port: "x" is not a port`},
		{"[global]\nrundir=/r\n[handler]\npush_in_spec=udp://x\n", `[handler] push_in_spec: "udp://x" is not a ZeroMQ spec`},
		{"[global]\nrundir=/r\n[handler]\nstats_format=xml\n", `[handler] stats_format: "xml" is not "tnetstring" or "json"`},
		{"[global]\nrundir=/r\n[proxy]\nsig_key=base64:!!\n", `[proxy] sig_key: "base64:!!" is not valid base64`},
		{"[global]\nrundir=/r\n[proxy]\nx_forwarded_for=drop\n", `[proxy] x_forwarded_for: "drop" is not "append" or "truncate:N"`},
		{"[runner]\n", `[global] rundir: "" is not set`},
		{"[global]\nrundir=/r\n[handler]\nipc_file_mode=999\n", `[handler] ipc_file_mode: "999" is not an octal file mode`},
	}
	for _, tc := range cases {
		_, err := LoadBytes("pushpin.conf", t.TempDir(), []byte(tc.conf), Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("conf %q: err = %v, want %q", tc.conf, err, tc.want)
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%v does not wrap ErrInvalid", err)
		}
	}
	// All problems are reported at once.
	_, err := LoadBytes("pushpin.conf", "", []byte("[global]\nrundir=/r\n[runner]\nhttp_port=a,b\n"), Options{})
	if err == nil || strings.Count(err.Error(), "is not a port") != 2 {
		t.Errorf("err = %v", err)
	}
	var ve *ValueError
	if !errors.As(err, &ve) || ve.Section != "runner" || ve.Key != "http_port" || ve.Value != "a" {
		t.Errorf("ValueError = %+v", ve)
	}
	// Errors in the include file name it.
	_, err = Load(Options{ConfigFile: writeConf(t, "[global]\ninclude=inc.conf\nrundir=/r\n", map[string]string{"inc.conf": "[proxy]\ncommand_spec=bad\n"})})
	if err == nil || !strings.Contains(err.Error(), "inc.conf: [proxy] command_spec") {
		t.Errorf("include err = %v", err)
	}
	// Command-line values are named as options.
	_, err = LoadBytes("pushpin.conf", "", []byte("[global]\nrundir=/r\n"), Options{Port: "x", LogLevel: "z"})
	if err == nil || !strings.Contains(err.Error(), `--port: "x" is not a port`) || !strings.Contains(err.Error(), `--loglevel: "z"`) {
		t.Errorf("options err = %v", err)
	}
}

func TestSigKeyFile(t *testing.T) {
	t.Parallel()
	p := writeConf(t, minimal+"[proxy]\nsig_key=file:keys/k.pem\nupstream_key=base64:aGk=\n", map[string]string{"keys/k.pem": "PEM"})
	c := mustLoad(t, p, Options{})
	if string(c.Proxy.SigKey) != "PEM" || string(c.Proxy.UpstreamKey) != "hi" {
		t.Errorf("keys %q %q", c.Proxy.SigKey, c.Proxy.UpstreamKey)
	}
}

func TestLogLevels(t *testing.T) {
	t.Parallel()
	l, err := ParseLogLevels([]string{"3", "condure:1", " pushpin-proxy : 4 ", "connmgr:0", ""})
	if err != nil {
		t.Fatal(err)
	}
	if l.Default != 3 || l.For("condure") != 0 || l.For("connmgr") != 0 || l.For("pushpin-proxy") != 4 || l.For("zurl") != 3 {
		t.Errorf("levels %+v", l)
	}
	for _, bad := range [][]string{{"x"}, {"-1"}, {"foo:2"}, {"condure:"}} {
		if _, err := ParseLogLevels(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	c := mustLoad(t, writeConf(t, minimal+"[runner]\nlog_level=1\n", nil), Options{LogLevel: "3,zurl:2"})
	if c.Runner.LogLevels.Default != 3 || c.Runner.LogLevels.For("zurl") != 2 {
		t.Errorf("--loglevel not applied: %+v", c.Runner.LogLevels)
	}
}

func TestRoutesOption(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, writeConf(t, minimal, nil), Options{Routes: []string{"* test"}})
	if !reflect.DeepEqual(c.Routes, []string{"* test"}) {
		t.Errorf("routes %q", c.Routes)
	}
}

func TestFindConfigFileOrder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if p, err := FindConfigFile(dir); err == nil && !strings.HasPrefix(p, "/etc/") {
		t.Fatalf("found %q in empty dir", p)
	}
	order := []string{"examples/config/pushpin.conf", "pushpin.conf", "config/pushpin.conf", "configs/pushpin.conf"}
	for _, rel := range order {
		full := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(minimal), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := FindConfigFile(dir)
		if err != nil || got != full {
			t.Errorf("after adding %s: got %q, %v", rel, got, err)
		}
	}
}

func TestDebianConfig(t *testing.T) {
	t.Parallel()
	paths := []string{"testdata/debian-pushpin.conf"}
	if _, err := os.Stat("/etc/pushpin/pushpin.conf"); err == nil {
		paths = append(paths, "/etc/pushpin/pushpin.conf")
	}
	for _, p := range paths {
		c := mustLoad(t, p, Options{})
		if c.Global.RunDir != "/var/run/pushpin" || c.Handler.PushInHTTPPort != 5561 || c.HasService("zurl") ||
			c.Proxy.CondureOutSpecs[0] != "ipc:///var/run/pushpin/pushpin-condure-in" || c.Runner.LogDir != "/var/log/pushpin" {
			t.Errorf("%s: %+v %+v", p, c.Global, c.Runner)
		}
		if len(c.Warnings) != 0 {
			t.Errorf("%s: warnings %q", p, c.Warnings)
		}
	}
}
