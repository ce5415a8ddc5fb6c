package runner

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pushpin-go/pushpin/configs"
)

// Our programs, by the Pushpin service slot they fill.
const (
	ProgConnMgr = "pushpin-connmgr"
	ProgZurl    = "pushpin-zurl"
	ProgProxy   = "pushpin-proxy"
	ProgHandler = "pushpin-handler"
)

// Service is one child process the runner starts: which slot it fills,
// what it is called in files and logs, and its exact command line.
type Service struct {
	// Kind is the canonical Pushpin service name (configs.ServiceConnMgr,
	// ServiceZurl, ServiceProxy, ServiceHandler).
	Kind string
	// Name names the pid and log files: "condure", "condure-2", "zurl",
	// "pushpin-proxy", "pushpin-handler".
	Name string
	// Label is what merged output inserts, as Pushpin does: "condure",
	// "zurl", "proxy", "handler" (with a "-N" suffix for extra connection
	// managers).
	Label string
	// Path is the executable; Args excludes argv[0].
	Path string
	Args []string
	// LogFile, when set, receives the child's stdout and stderr (the
	// connection manager has no --logfile, so this is its only log).
	LogFile string
	// PIDFile is {rundir}/{file_prefix}<Name>.pid.
	PIDFile string
	// ForwardHUP: SIGHUP to the runner is passed on (proxy, handler, zurl).
	ForwardHUP bool
}

// Plan holds the inputs for building command lines that do not come from
// pushpin.conf.
type Plan struct {
	// ConfigFile is the pushpin.conf path given to proxy and handler.
	ConfigFile string
	// MergeOutput: children log to the runner's output (no --logfile).
	MergeOutput bool
	// ExeDir is where our programs are looked up first (the runner's own
	// directory, bin/); then PATH.
	ExeDir string
	// ID is pushpin --id, or nil.
	ID *int
	// Verbose forces level 3 everywhere (pushpin --verbose).
	Verbose bool
}

// ProgramFor maps a Pushpin service slot and its *_bin setting to the
// executable name to resolve. A bare default name ("condure", "zurl" - the
// values Pushpin and Debian ship) selects our program; a path or any other
// name is used as given, so condure_bin=/usr/bin/condure runs the real one.
func ProgramFor(kind, bin string) string {
	switch kind {
	case configs.ServiceConnMgr:
		if bin == "" || bin == "condure" || bin == "connmgr" {
			return ProgConnMgr
		}
		return bin
	case configs.ServiceZurl:
		if bin == "" || bin == "zurl" {
			return ProgZurl
		}
		return bin
	case configs.ServiceProxy:
		return ProgProxy
	case configs.ServiceHandler:
		return ProgHandler
	}
	return kind
}

// Resolve finds prog: a name containing a slash is taken as a path; a bare
// name is looked up in exeDir first, then on PATH.
func Resolve(prog, exeDir string) (string, error) {
	if strings.ContainsRune(prog, '/') {
		if st, err := os.Stat(prog); err != nil || st.IsDir() {
			return "", fmt.Errorf("%w: %s", ErrProgramNotFound, prog)
		}
		return prog, nil
	}
	if exeDir != "" {
		p := filepath.Join(exeDir, prog)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath(prog)
	if err != nil {
		return "", fmt.Errorf("%w: %s (not in %s nor on PATH)", ErrProgramNotFound, prog, exeDir)
	}
	return p, nil
}

// level returns the Pushpin log level for a service.
func (p Plan) level(c *configs.Config, kind string) int {
	if p.Verbose {
		return configs.LevelDebug
	}
	return c.Runner.LogLevels.For(kind)
}

// Services builds the children for c in [runner] services order, with
// resolved executables. The zurl.conf the zurl command line names is not
// written here (see Runner.prepare).
func (p Plan) Services(c *configs.Config) ([]Service, error) {
	if len(c.Runner.Services) == 0 {
		return nil, ErrNoServices
	}
	var out []Service
	for _, kind := range c.Runner.Services {
		var bin string
		switch kind {
		case configs.ServiceConnMgr:
			bin = p.binSetting(c, "connmgr_bin", "condure_bin")
		case configs.ServiceZurl:
			bin = p.binSetting(c, "zurl_bin")
		}
		path, err := Resolve(ProgramFor(kind, bin), p.ExeDir)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", kind, err)
		}
		switch kind {
		case configs.ServiceConnMgr:
			for i := 1; i <= c.Runner.ConnMgrProcesses; i++ {
				out = append(out, p.connMgr(c, path, i))
			}
		case configs.ServiceZurl:
			out = append(out, p.zurl(c, path))
		case configs.ServiceProxy:
			out = append(out, p.proxy(c, path))
		case configs.ServiceHandler:
			out = append(out, p.handler(c, path))
		}
	}
	return out, nil
}

// binSetting returns the first *_bin key that is set, "" if none.
func (p Plan) binSetting(c *configs.Config, keys ...string) string {
	for _, k := range keys {
		if v, ok := c.Get("runner", k); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func (p Plan) base(c *configs.Config, name, label, kind, path string) Service {
	return Service{
		Kind: kind, Name: name, Label: label, Path: path,
		PIDFile: filepath.Join(c.Global.RunDir, c.Global.FilePrefix+name+".pid"),
	}
}

// logFile is the per-service log, or "" when children log to the runner's
// output (merged, or no logdir).
func (p Plan) logFile(c *configs.Config, name string) string {
	if p.MergeOutput || c.Runner.LogDir == "" {
		return ""
	}
	return filepath.Join(c.Runner.LogDir, c.Global.FilePrefix+name+".log")
}

// ConnMgrID is the zhttp instance id of connection manager n (1-based);
// see configs.ConnMgrID.
func ConnMgrID(n int) string { return configs.ConnMgrID(n) }

// connMgr builds condure's command line (config.md §3.1). Extra
// connection managers (connmgr_processes > 1) get their own --id and
// zclient base "<ipc_prefix>condure-N", which configs adds to the proxy's
// and handler's condure_* specs.
func (p Plan) connMgr(c *configs.Config, path string, n int) Service {
	id := ConnMgrID(n)
	s := p.base(c, id, id, configs.ServiceConnMgr, path)
	r := c.Runner
	args := []string{"--log-level=" + strconv.Itoa(p.level(c, configs.ServiceConnMgr))}
	for _, l := range r.HTTPPorts {
		args = append(args, "--listen="+l.String()+",stream")
	}
	for _, l := range r.HTTPSPorts {
		args = append(args, fmt.Sprintf("--listen=%s,stream,tls,default-cert=default_%d", l.String(), l.Port))
	}
	for _, lp := range r.LocalPorts {
		args = append(args, "--listen="+lp+",local,stream")
	}
	base := c.ConnMgrBaseN(n)
	if n > 1 {
		args = append(args, "--id="+id)
	}
	args = append(args,
		"--zclient-stream="+base,
		"--buffer-size="+strconv.Itoa(r.ClientBufferSize),
		"--stream-maxconn="+strconv.Itoa(r.ClientMaxConn))
	if r.AllowCompression {
		args = append(args, "--compression")
	}
	if r.ClientHeaderTimeout >= 0 && filepath.Base(path) == ProgConnMgr {
		// Ours only: condure has no such flag (Warnings says so).
		args = append(args, "--header-timeout="+strconv.Itoa(r.ClientHeaderTimeout))
	}
	if len(r.HTTPSPorts) > 0 {
		args = append(args, "--tls-identities-dir="+r.CertsDir)
	}
	s.Args = args
	s.LogFile = p.logFile(c, id)
	return s
}

func (p Plan) zurl(c *configs.Config, path string) Service {
	s := p.base(c, "zurl", "zurl", configs.ServiceZurl, path)
	s.ForwardHUP = true
	s.Args = []string{"--config=" + c.ZurlConfPath()}
	if lf := p.logFile(c, "zurl"); lf != "" {
		s.Args = append(s.Args, "--logfile="+lf)
		s.LogFile = lf
	}
	if lv := p.level(c, configs.ServiceZurl); lv >= configs.LevelDebug {
		s.Args = append(s.Args, "--verbose")
	} else {
		s.Args = append(s.Args, "--loglevel="+strconv.Itoa(lv))
	}
	return s
}

func (p Plan) proxy(c *configs.Config, path string) Service {
	s := p.base(c, configs.ServiceProxy, "proxy", configs.ServiceProxy, path)
	s.ForwardHUP = true
	s.Args = []string{"--config=" + p.ConfigFile, "--ipc-prefix=" + c.Global.IPCPrefix}
	if lf := p.logFile(c, configs.ServiceProxy); lf != "" {
		s.Args = append(s.Args, "--logfile="+lf)
		s.LogFile = lf
	}
	s.Args = append(s.Args, "--loglevel="+strconv.Itoa(p.level(c, configs.ServiceProxy)))
	for _, r := range c.Routes {
		s.Args = append(s.Args, "--route="+r)
	}
	s.Args = append(s.Args, "--quiet-check")
	return s
}

func (p Plan) handler(c *configs.Config, path string) Service {
	s := p.base(c, configs.ServiceHandler, "handler", configs.ServiceHandler, path)
	s.ForwardHUP = true
	s.Args = []string{"--config=" + p.ConfigFile, "--ipc-prefix=" + c.Global.IPCPrefix}
	if p.ID != nil {
		s.Args = append(s.Args, "--port-offset="+strconv.Itoa(c.Global.PortOffset))
	}
	if lf := p.logFile(c, configs.ServiceHandler); lf != "" {
		s.Args = append(s.Args, "--logfile="+lf)
		s.LogFile = lf
	}
	s.Args = append(s.Args, "--loglevel="+strconv.Itoa(p.level(c, configs.ServiceHandler)))
	return s
}
