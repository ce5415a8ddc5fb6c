// Package stackconf writes the files of one Pushpin deployment in a
// directory: pushpin.conf, internal.conf, routes and zurl.conf, with every
// port given and every internal socket under the directory's run/. The
// end-to-end tests (runner/e2e) and the load tool (scripts/bench) both run
// their stacks from it, so that what is tested is what is measured, and
// both Pushpin 1.36's programs and ours can run from the same files.
package stackconf

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Stack is one deployment's settings. Dir must be short: ipc paths under
// it must stay within ~100 bytes.
type Stack struct {
	Dir string // holds pushpin.conf, internal.conf, routes, log/ and run/

	HTTPPort       int // client port
	PushInPort     int // ZeroMQ PULL publish input
	PushInHTTPPort int // HTTP control API
	PushInSubPort  int // ZeroMQ SUB publish input
	CommandPort    int // command socket

	Routes   string // the routes file's text
	Internal string // internal.conf as shipped (Debian's or configs/); Write points its zurl sockets into run/

	// Extra lines for each section, and text appended after them all.
	Runner, Proxy, Handler, Extra string
}

// RunDir is the rundir of pushpin.conf.
func (s *Stack) RunDir() string { return filepath.Join(s.Dir, "run") }

// Conf is the path of pushpin.conf.
func (s *Stack) Conf() string { return filepath.Join(s.Dir, "pushpin.conf") }

// ZurlConf is the path of the zurl.conf written for a zurl started by hand.
func (s *Stack) ZurlConf() string { return filepath.Join(s.RunDir(), "zurl.conf") }

// IPC returns the endpoint of a named internal socket
// ({rundir}/{ipc_prefix}name).
func (s *Stack) IPC(name string) string { return "ipc://" + filepath.Join(s.RunDir(), "pushpin-"+name) }

// ZurlSpecsInRunDir points Debian's internal.conf zurl sockets
// (/var/run/zurl/...) into {rundir}, as upstream 1.36 has them, so that a
// stack needs no system directory.
func ZurlSpecsInRunDir(internal string) string {
	return strings.NewReplacer(
		"ipc:///var/run/zurl/zurl-in-stream", "ipc://{rundir}/{ipc_prefix}zurl-in-stream",
		"ipc:///var/run/zurl/zurl-in", "ipc://{rundir}/{ipc_prefix}zurl-in",
		"ipc:///var/run/zurl/zurl-out", "ipc://{rundir}/{ipc_prefix}zurl-out",
	).Replace(internal)
}

// Write writes the four files and creates run/ and log/.
func (s *Stack) Write() error {
	for _, d := range []string{s.RunDir(), filepath.Join(s.Dir, "log")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("stack dir: %w", err)
		}
	}
	internal := filepath.Join(s.Dir, "internal.conf")
	files := []struct{ path, text string }{
		{internal, ZurlSpecsInRunDir(s.Internal)},
		{filepath.Join(s.Dir, "routes"), s.Routes + "\n"},
		{s.Conf(), s.pushpinConf(internal)},
		{s.ZurlConf(), s.zurlConf()},
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, []byte(f.text), 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", f.path, err)
		}
	}
	return nil
}

func (s *Stack) pushpinConf(internal string) string {
	return fmt.Sprintf(`[global]
include=%s
rundir=%s
ipc_prefix=pushpin-
port_offset=0
stats_connection_ttl=120

[runner]
services=condure,zurl,pushpin-proxy,pushpin-handler
http_port=127.0.0.1:%d
logdir=%s
log_level=2
client_buffer_size=8192
client_maxconn=50000
%s
[proxy]
routesfile=routes
debug=false
auto_cross_origin=false
accept_x_forwarded_protocol=false
set_x_forwarded_protocol=proto-only
x_forwarded_for=
x_forwarded_for_trusted=
accept_pushpin_route=false
sig_iss=pushpin
sig_key=changeme
upstream_key=
updates_check=off
%s
[handler]
push_in_spec=tcp://127.0.0.1:%d
push_in_sub_specs=tcp://127.0.0.1:%d
push_in_sub_connect=false
push_in_http_addr=127.0.0.1
push_in_http_port=%d
stats_spec=ipc://{rundir}/{ipc_prefix}stats
command_spec=tcp://127.0.0.1:%d
id_cache_ttl=60
connection_subscription_max=20
subscription_linger=60
stats_subscription_ttl=60
stats_report_interval=10
stats_format=tnetstring
%s%s`, internal, s.RunDir(), s.HTTPPort, filepath.Join(s.Dir, "log"), s.Runner, s.Proxy,
		s.PushInPort, s.PushInSubPort, s.PushInHTTPPort, s.CommandPort, s.Handler, s.Extra)
}

func (s *Stack) zurlConf() string {
	return ZurlConf(s.IPC("zurl-in"), s.IPC("zurl-in-stream"), s.IPC("zurl-out"))
}

// ZurlConf is a zurl.conf for a zurl (Pushpin's or ours) started by hand
// on the given sockets, with the settings Pushpin's runner writes.
func ZurlConf(in, inStream, out string) string {
	return fmt.Sprintf(`[General]
instance_id=
in_spec=%s
in_stream_spec=%s
out_spec=%s
in_req_spec=
defpolicy=allow
allow=
deny=127.*,10.*,192.168.*,*.local
max_open_requests=2000
buffer_size=200000
timeout=600
in_hwm=1000
out_hwm=1000
`, in, inStream, out)
}
