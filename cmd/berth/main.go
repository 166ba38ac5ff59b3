// Command berth runs Compose projects as isolated Linux containers, with no
// daemon: `berth up` in a folder with a compose.yaml.
package main

import (
	"os"

	"github.com/berth-dev/berth/network"
	"github.com/berth-dev/berth/runtime"
)

func main() {
	// The monitor and the container init are this same binary re-executed;
	// they must take over before any CLI machinery starts.
	if runtime.Reexec(runtime.Roles{
		SetupNetwork: network.SetupContainerNetwork,
		StartDNS:     network.StartContainerDNS,
	}) {
		return
	}
	os.Exit(run(os.Args[1:]))
}
