// Command pushpin-zurl makes the backend HTTP requests the proxy asks for
// over zhttp (Pushpin's zurl).
package main

import (
	"github.com/pushpin-go/pushpin/cmd/internal/sysmon"
	"github.com/pushpin-go/pushpin/internal/cli"
	"github.com/pushpin-go/pushpin/zurl"
)

func main() {
	sysmon.Reexec()
	cli.Main(zurl.Command())
}
