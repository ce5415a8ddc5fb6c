// Command pushpin-handler is the handler process: held sessions, channel
// subscriptions and the publish inputs.
package main

import (
	"github.com/pushpin-go/pushpin/cmd/internal/sysmon"
	"github.com/pushpin-go/pushpin/handler"
	"github.com/pushpin-go/pushpin/internal/cli"
)

func main() {
	sysmon.Reexec()
	cli.Main(handler.Command())
}
