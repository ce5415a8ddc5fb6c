// Command pushpin-connmgr is the connection manager (Pushpin's condure). It
// accepts condure's command line, so the runner can start either.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := command().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "pushpin-connmgr:", err)
		os.Exit(1)
	}
}
