// Package version is the one place the programs' versions are written.
// Each is the release of the Pushpin program that ours replaces, since
// scripts and the runner's checks compare against those.
package version

const (
	// Pushpin is the Pushpin release this implementation is compatible
	// with: the runner, pushpin-proxy, pushpin-handler and pushpin-publish.
	Pushpin = "1.36.0"
	// Condure is the condure release whose command line pushpin-connmgr
	// accepts (the one Pushpin 1.36 starts).
	Condure = "1.9.1"
	// Zurl is the zurl release pushpin-zurl stands in for.
	Zurl = "1.11.1"
)
