package runner

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pushpin-go/pushpin/configs"
)

// fakeBin writes an executable shell script named name into dir.
func fakeBin(t *testing.T, dir, name, script string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// idleScript prints a Pushpin-style line and a plain one, then waits for a
// signal; SIGTERM ends it cleanly. It does not trap SIGHUP: a stand-in that
// survived HUP would hide that a real program dies of it.
const idleScript = `echo "[INFO] 2026-01-02 03:04:05.678 started $*"
echo "plain line"
trap 'exit 0' TERM
while :; do sleep 0.02; done`

// hupScript is idleScript that reports each SIGHUP instead of dying of it.
const hupScript = `echo "plain line"
trap 'echo "got hup"' HUP
trap 'exit 0' TERM
while :; do sleep 0.02; done`

// binDir holds fake versions of all our programs.
func binDir(t *testing.T, script string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range []string{ProgConnMgr, ProgZurl, ProgProxy, ProgHandler} {
		fakeBin(t, dir, n, script)
	}
	return dir
}

// loadConf loads a pushpin.conf written into dir from runner lines plus the
// sections every config needs.
func loadConf(t *testing.T, dir, runnerSection string, opts configs.Options) *configs.Config {
	t.Helper()
	conf := "[global]\ninclude={libdir}/internal.conf\nrundir=run\n\n[runner]\n" + runnerSection +
		"\n[proxy]\nroutesfile=routes\n\n[handler]\npush_in_spec=tcp://127.0.0.1:5560\npush_in_http_port=5561\ncommand_spec=tcp://127.0.0.1:5563\n"
	path := filepath.Join(dir, "pushpin.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "routes"), []byte("* test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts.ConfigFile = path
	c, err := configs.Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestProgramFor(t *testing.T) {
	t.Parallel()
	cases := []struct{ kind, bin, want string }{
		{configs.ServiceConnMgr, "", ProgConnMgr},
		{configs.ServiceConnMgr, "condure", ProgConnMgr}, // Debian's condure_bin=condure
		{configs.ServiceConnMgr, "connmgr", ProgConnMgr},
		{configs.ServiceConnMgr, "/usr/bin/condure", "/usr/bin/condure"},
		{configs.ServiceConnMgr, "my-condure", "my-condure"},
		{configs.ServiceZurl, "", ProgZurl},
		{configs.ServiceZurl, "zurl", ProgZurl},
		{configs.ServiceZurl, "/usr/bin/zurl", "/usr/bin/zurl"},
		{configs.ServiceProxy, "", ProgProxy},
		{configs.ServiceHandler, "", ProgHandler},
	}
	for _, c := range cases {
		if got := ProgramFor(c.kind, c.bin); got != c.want {
			t.Errorf("ProgramFor(%q, %q) = %q, want %q", c.kind, c.bin, got, c.want)
		}
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	dir := binDir(t, "exit 0")
	p, err := Resolve(ProgProxy, dir)
	if err != nil || p != filepath.Join(dir, ProgProxy) {
		t.Fatalf("next to the runner: %q, %v", p, err)
	}
	if p, err := Resolve("sh", t.TempDir()); err != nil || !filepath.IsAbs(p) {
		t.Fatalf("on PATH: %q, %v", p, err)
	}
	if _, err := Resolve("no-such-program-xyz", dir); err == nil || !strings.Contains(err.Error(), "no-such-program-xyz") {
		t.Fatalf("missing program: %v", err)
	}
	if _, err := Resolve(filepath.Join(dir, "nope"), ""); err == nil {
		t.Fatal("missing path accepted")
	}
}

func TestCommandLinesDefault(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bins := binDir(t, "exit 0")
	c := loadConf(t, dir, "services=condure,zurl,pushpin-proxy,pushpin-handler\nhttp_port=127.0.0.1:7999\nlogdir=log\nlog_level=2,condure:3,pushpin-proxy:1\n", configs.Options{})
	plan := Plan{ConfigFile: c.File, ExeDir: bins}
	svcs, err := plan.Services(c)
	if err != nil {
		t.Fatal(err)
	}
	run, log := filepath.Join(dir, "run"), filepath.Join(dir, "log")
	want := map[string][]string{
		"condure": {"--log-level=3", "--listen=127.0.0.1:7999,stream", "--zclient-stream=ipc://" + run + "/pushpin-condure",
			"--buffer-size=8192", "--stream-maxconn=50000"},
		"zurl": {"--config=" + run + "/zurl.conf", "--logfile=" + log + "/zurl.log", "--loglevel=2"},
		"pushpin-proxy": {"--config=" + c.File, "--ipc-prefix=pushpin-", "--logfile=" + log + "/pushpin-proxy.log",
			"--loglevel=1", "--quiet-check"},
		"pushpin-handler": {"--config=" + c.File, "--ipc-prefix=pushpin-", "--logfile=" + log + "/pushpin-handler.log", "--loglevel=2"},
	}
	if len(svcs) != 4 {
		t.Fatalf("%d services", len(svcs))
	}
	for i, name := range []string{"condure", "zurl", "pushpin-proxy", "pushpin-handler"} {
		s := svcs[i]
		if s.Name != name || !slices.Equal(s.Args, want[name]) {
			t.Errorf("%s:\n got %s %q\nwant %q", name, s.Name, s.Args, want[name])
		}
		if s.PIDFile != filepath.Join(run, name+".pid") {
			t.Errorf("%s pid file %s", name, s.PIDFile)
		}
		if s.LogFile != filepath.Join(log, name+".log") {
			t.Errorf("%s log file %q", name, s.LogFile)
		}
		if s.ForwardHUP != (name != "condure") {
			t.Errorf("%s ForwardHUP %v", name, s.ForwardHUP)
		}
	}
	if svcs[0].Path != filepath.Join(bins, ProgConnMgr) || svcs[1].Path != filepath.Join(bins, ProgZurl) {
		t.Errorf("default slots not ours: %s, %s", svcs[0].Path, svcs[1].Path)
	}
	if labels := []string{svcs[0].Label, svcs[1].Label, svcs[2].Label, svcs[3].Label}; !slices.Equal(labels, []string{"condure", "zurl", "proxy", "handler"}) {
		t.Errorf("labels %q", labels)
	}
}

// --id, TLS and local listeners, extra connection managers, external
// condure/zurl binaries, verbose and merged output.
func TestCommandLinesIDAndExternalBins(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bins := binDir(t, "exit 0")
	ext := t.TempDir()
	condure := fakeBin(t, ext, "condure", "exit 0")
	zurl := fakeBin(t, ext, "zurl", "exit 0")
	id := 3
	c := loadConf(t, dir, "services=connmgr,zurl,pushpin-proxy,pushpin-handler\nhttp_port=7999\nhttps_ports=127.0.0.1:8443\n"+
		"local_ports={rundir}/{ipc_prefix}server\nlogdir=log\nclient_buffer_size=4096\nclient_maxconn=100\n"+
		"connmgr_processes=2\ncondure_bin="+condure+"\nzurl_bin="+zurl+"\n",
		configs.Options{ID: &id, Routes: []string{"* test", "example.com localhost:80"}})
	plan := Plan{ConfigFile: c.File, ExeDir: bins, ID: &id, Verbose: true, MergeOutput: true}
	svcs, err := plan.Services(c)
	if err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "run")
	if len(svcs) != 5 {
		t.Fatalf("%d services, want 2 connection managers + 3", len(svcs))
	}
	cm := []string{"--log-level=3", "--listen=0.0.0.0:7999,stream", "--listen=127.0.0.1:8443,stream,tls,default-cert=default_8443",
		"--listen=" + run + "/p3-server,local,stream"}
	want := map[string][]string{
		"condure": append(slices.Clone(cm), "--zclient-stream=ipc://"+run+"/p3-condure", "--buffer-size=4096",
			"--stream-maxconn=100", "--tls-identities-dir="+filepath.Join(dir, "runner", "certs")),
		"condure-2": append(slices.Clone(cm), "--id=condure-2", "--zclient-stream=ipc://"+run+"/p3-condure-2", "--buffer-size=4096",
			"--stream-maxconn=100", "--tls-identities-dir="+filepath.Join(dir, "runner", "certs")),
		"zurl":            {"--config=" + run + "/p3-zurl.conf", "--verbose"},
		"pushpin-proxy":   {"--config=" + c.File, "--ipc-prefix=p3-", "--loglevel=3", "--route=* test", "--route=example.com localhost:80", "--quiet-check"},
		"pushpin-handler": {"--config=" + c.File, "--ipc-prefix=p3-", "--port-offset=30", "--loglevel=3"},
	}
	for _, s := range svcs {
		if !slices.Equal(s.Args, want[s.Name]) {
			t.Errorf("%s:\n got %q\nwant %q", s.Name, s.Args, want[s.Name])
		}
		if s.LogFile != "" {
			t.Errorf("%s: log file %q with merged output", s.Name, s.LogFile)
		}
		if s.PIDFile != filepath.Join(run, "p3-"+s.Name+".pid") {
			t.Errorf("%s pid file %s", s.Name, s.PIDFile)
		}
	}
	if svcs[0].Path != condure || svcs[1].Path != condure || svcs[2].Path != zurl {
		t.Errorf("condure_bin/zurl_bin not used: %s %s %s", svcs[0].Path, svcs[1].Path, svcs[2].Path)
	}
	// The proxy and handler reach the second connection manager without
	// any condure_* edit: configs adds its sockets to their lists.
	for name, got := range map[string][]string{
		"proxy in":          c.Proxy.CondureInSpecs,
		"proxy in-stream":   c.Proxy.CondureInStreamSpecs,
		"proxy out":         c.Proxy.CondureOutSpecs,
		"handler in-stream": c.Handler.CondureInStreamSpecs,
		"handler out":       c.Handler.CondureOutSpecs,
	} {
		if len(got) != 2 || !strings.HasPrefix(got[1], "ipc://"+run+"/p3-condure-2-") || strings.TrimPrefix(got[1], "ipc://"+run+"/p3-condure-2") != strings.TrimPrefix(got[0], "ipc://"+run+"/p3-condure") {
			t.Errorf("%s specs %q, want both connection managers", name, got)
		}
	}
	r := &Runner{cfg: c, services: svcs}
	if w := r.Warnings(); len(w) != 0 {
		t.Errorf("warnings %q, want none", w)
	}
	// A proxy pointed elsewhere is left alone, and the runner says so.
	c2 := loadConf(t, t.TempDir(), "services=condure,pushpin-proxy\nhttp_port=7999\nconnmgr_processes=2\n[proxy]\ncondure_in_specs=ipc:///elsewhere/in\n", configs.Options{})
	if !slices.Equal(c2.Proxy.CondureInSpecs, []string{"ipc:///elsewhere/in"}) {
		t.Errorf("custom condure_in_specs changed: %q", c2.Proxy.CondureInSpecs)
	}
	r2 := &Runner{cfg: c2}
	if w := r2.Warnings(); len(w) != 1 || !strings.Contains(w[0], "condure-2-out") {
		t.Errorf("warnings %q, want one about the proxy's condure_in_specs", w)
	}
}

func TestServicesErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := loadConf(t, dir, "services=condure,pushpin-proxy\nhttp_port=7999\n", configs.Options{})
	_, err := Plan{ExeDir: t.TempDir()}.Services(c)
	if err == nil || !strings.Contains(err.Error(), "condure") || !strings.Contains(err.Error(), ProgConnMgr) {
		t.Fatalf("missing connection manager: %v", err)
	}
	c2 := loadConf(t, t.TempDir(), "services=\nhttp_port=7999\n", configs.Options{})
	if _, err := (Plan{}).Services(c2); err != ErrNoServices {
		t.Fatalf("no services: %v", err)
	}
}

// Runner settings that start but do nothing yet are named at start-up (and
// by --check-config): TLS listeners in our connection manager. WebSocket
// compression (allow_compression, passed as --compression) is acted on.
func TestWarningsSettingsNotActedOn(t *testing.T) {
	t.Parallel()
	bins := binDir(t, idleScript)
	c := loadConf(t, t.TempDir(), "services=condure\nhttp_port=7999\nhttps_ports=8443\nallow_compression=true\n", configs.Options{})
	svcs, err := Plan{ExeDir: bins}.Services(c)
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join((&Runner{cfg: c, services: svcs}).Warnings(), "\n")
	if !strings.Contains(w, "[runner] https_ports") || strings.Contains(w, "allow_compression") {
		t.Errorf("warnings %q, want https_ports named and allow_compression not", w)
	}
	for _, sv := range svcs {
		if sv.Kind == configs.ServiceConnMgr && !slices.Contains(sv.Args, "--compression") {
			t.Errorf("connection manager args %q lack --compression", sv.Args)
		}
	}
	// Pushpin's condure serves TLS: no https_ports warning then.
	c2 := loadConf(t, t.TempDir(), "services=condure\nhttp_port=7999\nhttps_ports=8443\ncondure_bin=/bin/sh\n", configs.Options{})
	svcs2, err := Plan{ExeDir: bins}.Services(c2)
	if err != nil {
		t.Fatal(err)
	}
	if w := (&Runner{cfg: c2, services: svcs2}).Warnings(); len(w) != 0 {
		t.Errorf("warnings %q with condure_bin, want none", w)
	}
}

// client_header_timeout (ours) reaches our connection manager as
// --header-timeout; the real condure has no such flag, so it is not given
// one and the runner warns that the setting is not applied.
func TestCommandLinesHeaderTimeout(t *testing.T) {
	t.Parallel()
	bins := binDir(t, "exit 0")
	c := loadConf(t, t.TempDir(), "services=condure,pushpin-proxy\nhttp_port=7999\nclient_header_timeout=5\n", configs.Options{})
	svcs, err := Plan{ConfigFile: c.File, ExeDir: bins}.Services(c)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(svcs[0].Args, "--header-timeout=5") {
		t.Errorf("our connection manager's args %q lack --header-timeout=5", svcs[0].Args)
	}
	if w := (&Runner{cfg: c, services: svcs}).Warnings(); len(w) != 0 {
		t.Errorf("warnings %q, want none", w)
	}
	condure := fakeBin(t, t.TempDir(), "condure", "exit 0")
	c2 := loadConf(t, t.TempDir(), "services=condure,pushpin-proxy\nhttp_port=7999\nclient_header_timeout=5\ncondure_bin="+condure+"\n", configs.Options{})
	svcs2, err := Plan{ConfigFile: c2.File, ExeDir: bins}.Services(c2)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range svcs2[0].Args {
		if strings.HasPrefix(a, "--header-timeout") {
			t.Errorf("condure given %s", a)
		}
	}
	if w := (&Runner{cfg: c2, services: svcs2}).Warnings(); len(w) != 1 || !strings.Contains(w[0], "client_header_timeout") {
		t.Errorf("warnings %q, want one about client_header_timeout", w)
	}
	// Not set: nothing passed, the connection manager's default applies.
	c3 := loadConf(t, t.TempDir(), "services=condure,pushpin-proxy\nhttp_port=7999\n", configs.Options{})
	svcs3, err := Plan{ConfigFile: c3.File, ExeDir: bins}.Services(c3)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range svcs3[0].Args {
		if strings.HasPrefix(a, "--header-timeout") {
			t.Errorf("unset client_header_timeout gave %s", a)
		}
	}
}
