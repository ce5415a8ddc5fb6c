package e2e

import (
	_ "embed"
)

// internalConf is Debian's Pushpin 1.36 internal.conf; write() points its
// zurl specs back into the run dir, as upstream 1.36 has them.
//
//go:embed testdata/internal-1.36-debian.conf
var internalConf string
