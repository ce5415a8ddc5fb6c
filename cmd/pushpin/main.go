// Command pushpin is the runner: it starts and supervises the connection
// manager, zurl, proxy and handler listed in pushpin.conf.
package main

import (
	"fmt"
	"os"

	"github.com/pushpin-go/pushpin/runner"
)

func main() {
	if err := runner.NewCommand(os.Stdout, os.Stderr).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "pushpin:", err)
		os.Exit(1)
	}
}
