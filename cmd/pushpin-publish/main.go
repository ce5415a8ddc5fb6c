// Command pushpin-publish publishes one item to a channel through the
// handler's HTTP control API, like Pushpin's tool of the same name.
package main

import (
	"github.com/pushpin-go/pushpin/handler/publishcmd"
	"github.com/pushpin-go/pushpin/internal/cli"
)

func main() {
	cli.Main(publishcmd.Command())
}
