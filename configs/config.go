package configs

import (
	"net"
	"path/filepath"
	"slices"
	"strconv"
)

// Config is a loaded and validated pushpin.conf. Fields hold the value the
// process should use: code defaults when a key is absent, substitutions and
// port_offset applied, relative paths made absolute against the directory of
// the config file. Keys not modelled here are reachable through Get and List.
type Config struct {
	// File is the path of the main config file as given ("" when loaded
	// from bytes without a name); Dir is its absolute directory.
	File string
	Dir  string

	Global  Global
	Runner  Runner
	Proxy   Proxy
	Handler Handler

	// Routes holds routes lines given on the command line (--route). When
	// non-nil they replace Proxy.RoutesFile.
	Routes []string

	// Warnings lists harmless oddities (lines Qt would skip); log them.
	Warnings []string

	settings *Settings
}

// Global is the [global] section.
type Global struct {
	Include            string // resolved include path, or "internal.conf" for the embedded file
	RunDir             string // absolute; created by the runner if missing
	IPCPrefix          string // {ipc_prefix}; "pushpin-" or "p<id>-" with --id
	FilePrefix         string // "" or "p<id>-" with --id: prefix of pid, log and zurl.conf files
	PortOffset         int
	StatsConnectionTTL int // seconds
	LibDir             string
}

// Runner is the [runner] section.
type Runner struct {
	// Services holds canonical names (ServiceConnMgr, ServiceZurl,
	// ServiceProxy, ServiceHandler) in configured order; "connmgr" is
	// accepted as an alias of "condure".
	Services   []string
	HTTPPorts  []Listener // plain HTTP/WS listeners
	HTTPSPorts []Listener // TLS listeners (certs in CertsDir)
	LocalPorts []string   // Unix socket paths
	// CertsDir is <config dir>/runner/certs.
	CertsDir         string
	LogDir           string // absolute; "" means log to the runner's output
	LogLevels        LogLevels
	ClientBufferSize int
	ClientMaxConn    int
	AllowCompression bool // permessage-deflate towards clients (later Pushpin key)
	// ConnMgrProcesses is our extension: how many connection-manager
	// processes share the client ports with SO_REUSEPORT (default 1).
	ConnMgrProcesses int
	// ClientHeaderTimeout is our extension (client_header_timeout,
	// seconds, 0: off): how long a client has to send a request head
	// before our connection manager closes it (condure has no such
	// limit). -1 when not set: the connection manager's default.
	ClientHeaderTimeout int
	// CondureBin is the connection manager executable: [runner]
	// connmgr_bin (our alias) or condure_bin.
	CondureBin  string
	ZurlBin     string
	Mongrel2Bin string
	M2shBin     string
}

// Listener is one [addr:]port entry of http_port/https_ports or --port.
type Listener struct {
	Addr string // "0.0.0.0" when the entry had no address
	Port int
}

// String returns addr:port, bracketing IPv6 addresses.
func (l Listener) String() string { return net.JoinHostPort(l.Addr, strconv.Itoa(l.Port)) }

// XFPMode is the [proxy] set_x_forwarded_protocol setting.
type XFPMode int

// Values of XFPMode.
const (
	XFPNone      XFPMode = iota // don't set the headers
	XFPBoth                     // "true": X-Forwarded-Proto and X-Forwarded-Protocol
	XFPProtoOnly                // "proto-only": X-Forwarded-Proto only
)

// Proxy is the [proxy] section, including its internal.conf socket specs.
type Proxy struct {
	RoutesFile               string // absolute
	Debug                    bool
	AutoCrossOrigin          bool
	AcceptXForwardedProtocol bool
	SetXForwardedProtocol    XFPMode
	XForwardedFor            []string // e.g. truncate:0, append
	XForwardedForTrusted     []string
	OrigHeadersNeedMark      []string
	AcceptPushpinRoute       bool
	LogFrom                  bool
	LogUserAgent             bool
	SigIss                   string
	// SigKey is the Grip-Sig signing key, decoded: plain string, base64:…
	// or file:<path> (relative to the config dir). Nil when unset.
	SigKey []byte
	// UpstreamKey verifies incoming Grip-Sig (decoded like SigKey).
	UpstreamKey         []byte
	SockJSURL           string
	UpdatesCheck        string // kept for reference; we never phone home
	OrganizationName    string
	StatsReportInterval int // seconds
	PrometheusPort      string
	PrometheusPrefix    string
	IPCFileMode         int // -1 when unset
	MaxOpenRequests     int // -1 = unlimited

	CondureInSpecs          []string // connect PULL  ← condure-out
	CondureInStreamSpecs    []string // connect ROUTER ↔ condure-out-stream
	CondureOutSpecs         []string // connect PUB   → condure-in
	ZurlOutSpecs            []string // connect PUSH  → zurl-in
	ZurlOutStreamSpecs      []string // connect ROUTER → zurl-in-stream
	ZurlInSpecs             []string // connect SUB   ← zurl-out
	HandlerInspectSpec      []string // bind DEALER inspect
	HandlerAcceptSpec       []string // bind DEALER accept
	HandlerRetryInSpec      []string // bind PULL retry
	HandlerWSControlInSpec  []string // bind PULL ws-control-in
	HandlerWSControlOutSpec []string // bind PUSH ws-control-out
	StatsSpec               []string // bind PUB proxy-stats
	CommandSpec             []string // bind ROUTER proxy-command
	IntreqInSpecs           []string // bind PULL intreq-in
	IntreqInStreamSpecs     []string // bind ROUTER intreq-in-stream
	IntreqOutSpecs          []string // bind PUB intreq-out
}

// Handler is the [handler] section, including its internal.conf socket specs.
type Handler struct {
	PushInSpec       []string // bind PULL for publish items
	PushInSubSpecs   []string // SUB for publish items; legacy push_in_sub_spec appended
	PushInSubConnect bool
	PushInHTTPAddr   string
	// PushInHTTPPort includes port_offset; 0 means no HTTP control API.
	PushInHTTPPort            int
	PushInMaxHeadersSize      int
	PushInMaxBodySize         int
	StatsSpec                 []string
	CommandSpec               []string
	StateSpec                 []string
	IPCFileMode               int // -1 when unset
	ShareAll                  bool
	MessageRate               int // -1 = unlimited
	MessageHWM                int // -1 = unlimited
	MessageBlockSize          int // -1 = unset
	MessageWait               int // milliseconds
	IDCacheTTL                int // seconds, 0 = off
	ConnectionSubscriptionMax int
	StreamMaxQueueSize        int // bytes a stream client may fall behind (extension)
	SubscriptionLinger        int // seconds
	StatsSubscriptionTTL      int
	StatsReportInterval       int
	StatsFormat               string // "tnetstring" or "json"
	PrometheusPort            string
	PrometheusPrefix          string

	ProxyInspectSpec          []string // connect inspect
	ProxyAcceptSpec           []string // connect accept
	ProxyRetryOutSpec         []string // connect PUSH retry
	ProxyWSControlInSpec      []string // connect PULL ws-control-out
	ProxyWSControlOutSpec     []string // connect PUSH ws-control-in
	ProxyStatsSpec            []string // connect SUB proxy-stats
	ProxyCommandSpec          []string // connect DEALER proxy-command
	ProxyIntreqOutSpecs       []string // connect PUSH intreq-in
	ProxyIntreqOutStreamSpecs []string // connect ROUTER intreq-in-stream
	ProxyIntreqInSpecs        []string // connect SUB intreq-out
	// CondureInStreamSpecs and CondureOutSpecs are read from [proxy], as the
	// 1.36 handler does, falling back to [handler].
	CondureInStreamSpecs []string
	CondureOutSpecs      []string
}

// Get returns section/key from the main file or its include, substituted,
// for keys the typed fields don't cover.
func (c *Config) Get(section, key string) (string, bool) { return c.settings.Get(section, key) }

// List returns section/key as a list (Qt comma semantics), substituted.
func (c *Config) List(section, key string) ([]string, bool) { return c.settings.List(section, key) }

// HasService reports whether name (canonical or alias) is in Runner.Services.
func (c *Config) HasService(name string) bool {
	name = canonicalService(name)
	for _, s := range c.Runner.Services {
		if s == name {
			return true
		}
	}
	return false
}

// PIDFile returns {rundir}/{file_prefix}<service>.pid.
func (c *Config) PIDFile(service string) string {
	return filepath.Join(c.Global.RunDir, c.Global.FilePrefix+service+".pid")
}

// LogFile returns <logdir>/{file_prefix}<service>.log, or "" without logdir.
func (c *Config) LogFile(service string) string {
	if c.Runner.LogDir == "" {
		return ""
	}
	return filepath.Join(c.Runner.LogDir, c.Global.FilePrefix+service+".log")
}

// ZurlConfPath returns {rundir}/{file_prefix}zurl.conf, the file the runner
// writes for zurl.
func (c *Config) ZurlConfPath() string {
	return filepath.Join(c.Global.RunDir, c.Global.FilePrefix+"zurl.conf")
}

// ConnMgrBase returns ipc://{rundir}/{ipc_prefix}condure, the
// --zclient-stream base the runner gives the connection manager.
func (c *Config) ConnMgrBase() string { return c.ConnMgrBaseN(1) }

// ConnMgrID is the zhttp instance id of connection manager n (1-based):
// "condure" for the first (condure's default, so no --id is passed), then
// "condure-2", ….
func ConnMgrID(n int) string {
	if n <= 1 {
		return ServiceConnMgr
	}
	return ServiceConnMgr + "-" + strconv.Itoa(n)
}

// ConnMgrBaseN is connection manager n's --zclient-stream base:
// ipc://{rundir}/{ipc_prefix}condure, then …condure-2, ….
func (c *Config) ConnMgrBaseN(n int) string {
	return "ipc://" + filepath.Join(c.Global.RunDir, c.Global.IPCPrefix+ConnMgrID(n))
}

// addConnMgrSpecs makes the proxy and handler reach every connection
// manager of [runner] connmgr_processes: connecting sockets take lists, so
// the extra processes' sockets are appended to the condure_* specs (unless
// already listed). Only the sockets derived from the default base are
// added: a config that points condure_* elsewhere lists them itself.
func (c *Config) addConnMgrSpecs() {
	add := func(list []string, suffix string, n int) []string {
		if len(list) == 0 || list[0] != c.ConnMgrBaseN(1)+suffix {
			return list
		}
		if spec := c.ConnMgrBaseN(n) + suffix; !slices.Contains(list, spec) {
			list = append(list, spec)
		}
		return list
	}
	for n := 2; n <= c.Runner.ConnMgrProcesses; n++ {
		p, h := &c.Proxy, &c.Handler
		p.CondureInSpecs = add(p.CondureInSpecs, "-out", n)
		p.CondureInStreamSpecs = add(p.CondureInStreamSpecs, "-out-stream", n)
		p.CondureOutSpecs = add(p.CondureOutSpecs, "-in", n)
		h.CondureInStreamSpecs = add(h.CondureInStreamSpecs, "-out-stream", n)
		h.CondureOutSpecs = add(h.CondureOutSpecs, "-in", n)
	}
}
