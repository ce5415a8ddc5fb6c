package configs

import _ "embed"

// InternalConf is our copy of Pushpin 1.36's internal.conf (the internal
// socket specs). It is the upstream file: the zurl sockets live in {rundir},
// not in Debian's /var/run/zurl. An include of `internal.conf` or
// `{libdir}/internal.conf` resolves to it.
//
//go:embed internal.conf
var InternalConf []byte

// ExamplePushpinConf is configs/pushpin.conf, the example configuration.
//
//go:embed pushpin.conf
var ExamplePushpinConf []byte

// ExampleRoutes is configs/routes, the example routes file.
//
//go:embed routes
var ExampleRoutes []byte

// InternalConfName is the include value that selects the embedded internal.conf.
const InternalConfName = "internal.conf"

// DefaultLibDir is substituted for {libdir} when neither [global] libdir nor
// Options.LibDir says otherwise (Pushpin's compiled-in value on Linux).
const DefaultLibDir = "/usr/lib/pushpin"

// DefaultIPCPrefix is the {ipc_prefix} used when [global] ipc_prefix is absent.
const DefaultIPCPrefix = "pushpin-"

// Canonical service names, as Pushpin's runner spells them in [runner]
// services, log file names and pid file names.
const (
	ServiceConnMgr = "condure"
	ServiceZurl    = "zurl"
	ServiceProxy   = "pushpin-proxy"
	ServiceHandler = "pushpin-handler"
	ServiceRunner  = "runner"
)
