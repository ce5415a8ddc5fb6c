// Command pushpin-connmgr is the connection manager (Pushpin's condure); it
// accepts condure's command line, so the runner can start either.
package main

import (
	"github.com/pushpin-go/pushpin/cmd/internal/sysmon"
	"github.com/pushpin-go/pushpin/connmgr"
	"github.com/pushpin-go/pushpin/internal/cli"
)

func main() {
	sysmon.Reexec()
	cli.Main(connmgr.Command())
}
