// Command pushpin-proxy is the proxy process: routes client requests to
// backends and hands GRIP holds to the handler.
package main

import (
	"github.com/pushpin-go/pushpin/cmd/internal/sysmon"
	"github.com/pushpin-go/pushpin/internal/cli"
	"github.com/pushpin-go/pushpin/proxy"
)

func main() {
	sysmon.Reexec()
	cli.Main(proxy.Command())
}
