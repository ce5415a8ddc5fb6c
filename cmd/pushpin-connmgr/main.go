// Command pushpin-connmgr is the connection manager (Pushpin's condure). It
// accepts condure's command line, so the runner can start either.
package main

import (
	"fmt"
	"os"

	"github.com/pushpin-go/pushpin/cmd/internal/sysmon"
)

func main() {
	sysmon.Reexec()
	if err := command().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "pushpin-connmgr:", err)
		os.Exit(1)
	}
}
