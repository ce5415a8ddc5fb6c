package configs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Options are the command-line overrides shared by the runner, proxy and
// handler. Zero values mean "use the config file".
type Options struct {
	// ConfigFile is --config; "" searches DefaultConfigPaths.
	ConfigFile string
	// IPCPrefix is --ipc-prefix; it wins over ID.
	IPCPrefix string
	// PortOffset is --port-offset; it wins over ID.
	PortOffset *int
	// ID is pushpin --id: ipc_prefix and file prefix "p<id>-", port offset id*10.
	ID *int
	// LogLevel is --loglevel ("N" and/or "service:N" items, comma separated);
	// it replaces [runner] log_level.
	LogLevel string
	// Port is --port [addr:]port; it replaces every configured listener.
	Port string
	// Routes are --route lines; they replace the routes file.
	Routes []string
	// LibDir is the compiled-in {libdir}; "" means DefaultLibDir.
	LibDir string
}

// DefaultConfigPaths are tried in order when no --config is given: ours
// first, then Pushpin's runner search list.
var DefaultConfigPaths = []string{
	"./configs/pushpin.conf",
	"./config/pushpin.conf",
	"./pushpin.conf",
	"./examples/config/pushpin.conf",
	"/etc/pushpin/pushpin.conf",
}

// FindConfigFile returns the first of DefaultConfigPaths that exists, with
// relative entries taken from dir ("" = the working directory).
func FindConfigFile(dir string) (string, error) {
	for _, p := range DefaultConfigPaths {
		full := p
		if dir != "" && !filepath.IsAbs(p) {
			full = filepath.Join(dir, p)
		}
		if st, err := os.Stat(full); err == nil && !st.IsDir() {
			return full, nil
		}
	}
	return "", fmt.Errorf("%w (tried %s)", ErrNoConfigFile, strings.Join(DefaultConfigPaths, ", "))
}

// Load reads, decodes and validates the config file named by
// opts.ConfigFile (or the first default location). All problems are
// reported together; each wraps ErrInvalid or is an I/O error.
func Load(opts Options) (*Config, error) {
	path := opts.ConfigFile
	if path == "" {
		p, err := FindConfigFile("")
		if err != nil {
			return nil, err
		}
		path = p
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return LoadBytes(path, filepath.Dir(abs), data, opts)
}

// LoadBytes is Load for a config already in memory. name is used in
// messages; dir is the directory relative paths (include, rundir, logdir,
// routesfile, sig_key file:) are resolved against.
func LoadBytes(name, dir string, data []byte, opts Options) (*Config, error) {
	if dir == "" {
		dir = "."
	}
	if d, err := filepath.Abs(dir); err == nil {
		dir = d
	}
	main := ParseINI(name, data)
	s := &Settings{main: main, mainName: name}
	c := &Config{File: name, Dir: dir, settings: s, Warnings: main.Warnings}
	d := &decoder{s: s}

	// Variables come from the main file only, as in Pushpin's Settings.
	s.libDir = opts.LibDir
	if s.libDir == "" {
		s.libDir = DefaultLibDir
	}
	explicitLib := ""
	if v, ok := main.Get("global", "libdir"); ok && v != "" {
		s.libDir, explicitLib = v, v
	}
	if err := loadInclude(c, s, dir, explicitLib); err != nil {
		d.errs = append(d.errs, err)
	}

	g := &c.Global
	g.LibDir = s.libDir
	g.IPCPrefix = DefaultIPCPrefix
	if v, ok := s.Get("global", "ipc_prefix"); ok {
		g.IPCPrefix = v
	}
	g.PortOffset = d.int("global", "port_offset", 0)
	if opts.ID != nil {
		if *opts.ID < 0 {
			d.fail("", "", "--id", strconv.Itoa(*opts.ID), "is not a valid id")
		}
		g.IPCPrefix = fmt.Sprintf("p%d-", *opts.ID)
		g.FilePrefix = g.IPCPrefix
		g.PortOffset = *opts.ID * 10
	}
	if opts.IPCPrefix != "" {
		g.IPCPrefix = opts.IPCPrefix
	}
	if opts.PortOffset != nil {
		g.PortOffset = *opts.PortOffset
	}
	runDir, ok := s.Get("global", "rundir")
	if !ok || runDir == "" {
		runDir, _ = s.Get("runner", "rundir") // deprecated location
	}
	if runDir != "" {
		runDir = absIn(dir, runDir)
	}
	g.RunDir = runDir
	s.runDir, s.ipcPrefix, s.portOffset = runDir, g.IPCPrefix, g.PortOffset
	if runDir == "" {
		d.fail(name, "global", "rundir", "", "is not set (needed for ipc sockets and pid files)")
	}
	g.StatsConnectionTTL = d.int("global", "stats_connection_ttl", 120)

	decodeRunner(c, d, opts)
	decodeProxy(c, d)
	decodeHandler(c, d)
	c.addConnMgrSpecs()
	if opts.Routes != nil {
		c.Routes = append([]string{}, opts.Routes...)
	}
	if err := errors.Join(append(d.errs, c.Validate())...); err != nil {
		return nil, err
	}
	return c, nil
}

// loadInclude resolves [global] include. The literal internal.conf (bare or
// under {libdir}) is our embedded copy unless the config sets [global]
// libdir explicitly and that directory has its own internal.conf.
func loadInclude(c *Config, s *Settings, dir, explicitLib string) error {
	inc, ok := s.main.Get("global", "include")
	if !ok || inc == "" {
		return nil
	}
	if inc == InternalConfName || inc == "{libdir}/"+InternalConfName {
		custom := ""
		if explicitLib != "" {
			custom = absIn(dir, filepath.Join(explicitLib, InternalConfName))
		}
		if _, err := os.Stat(custom); custom == "" || err != nil {
			s.include = ParseINI(InternalConfName, InternalConf)
			s.includeName = InternalConfName
			c.Global.Include = InternalConfName
			return nil
		}
		inc = custom
	}
	inc = absIn(dir, strings.ReplaceAll(inc, "{libdir}", s.libDir))
	data, err := os.ReadFile(inc)
	if err != nil {
		return fmt.Errorf("%s: [global] include: %w", s.mainName, err)
	}
	s.include = ParseINI(inc, data)
	s.includeName = inc
	c.Global.Include = inc
	c.Warnings = append(c.Warnings, s.include.Warnings...)
	return nil
}

func absIn(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// decoder reads typed values and collects every problem instead of stopping
// at the first, so a user fixes the whole file in one go.
type decoder struct {
	s    *Settings
	errs []error
}

func (d *decoder) fail(file, section, key, value, reason string) {
	d.errs = append(d.errs, &ValueError{File: file, Section: section, Key: key, Value: value, Reason: reason})
}

func (d *decoder) failKey(section, key, value, reason string) {
	d.fail(d.s.File(section, key), section, key, value, reason)
}

func (d *decoder) str(section, key, def string) string {
	if v, ok := d.s.Get(section, key); ok {
		return v
	}
	return def
}

// list returns the non-empty items, or nil when the key is absent.
func (d *decoder) list(section, key string) []string {
	items, _ := d.s.List(section, key)
	out := items[:0]
	for _, it := range items {
		if it != "" {
			out = append(out, it)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// boolean follows QVariant::toBool on a string: false only for "", "0" and
// "false" (any case).
func (d *decoder) boolean(section, key string, def bool) bool {
	v, ok := d.s.Get(section, key)
	if !ok {
		return def
	}
	return ParseBool(v)
}

// int parses a decimal integer. An empty value means the default. Qt would
// turn garbage into 0; we report it instead.
// isSet says whether section has a non-empty key.
func (d *decoder) isSet(section, key string) bool {
	v, ok := d.s.Get(section, key)
	return ok && strings.TrimSpace(v) != ""
}

func (d *decoder) int(section, key string, def int) int {
	v, ok := d.s.Get(section, key)
	if !ok || strings.TrimSpace(v) == "" {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		d.failKey(section, key, v, "is not an integer")
		return def
	}
	return n
}

func (d *decoder) octal(section, key string) int {
	v, ok := d.s.Get(section, key)
	if !ok || strings.TrimSpace(v) == "" {
		return -1
	}
	n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
	if err != nil || n > 0o7777 {
		d.failKey(section, key, v, "is not an octal file mode")
		return -1
	}
	return int(n)
}

// ParseBool applies Qt's string-to-bool rule: false for "", "0" and "false"
// (case-insensitive, surrounding spaces ignored), true otherwise.
func ParseBool(v string) bool {
	v = strings.TrimSpace(v)
	return !(v == "" || v == "0" || strings.EqualFold(v, "false"))
}
