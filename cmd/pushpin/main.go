// Command pushpin is the runner: it starts and supervises the connection
// manager, zurl, proxy and handler listed in pushpin.conf.
package main

import (
	"github.com/pushpin-go/pushpin/internal/cli"
	"github.com/pushpin-go/pushpin/runner"
)

func main() {
	cli.Main(runner.Command())
}
