package runtime

import (
	"encoding/json"
	"io"
	"os"
)

// Roles are what the berth binary plugs into the monitor: the runtime knows
// no network code, and the main package, which may import both, wires them.
type Roles struct {
	// SetupNetwork plugs the new network namespace of process pid into the
	// networks config (Spec.Network) describes. The monitor calls it after
	// the clone and before the container's process starts.
	SetupNetwork func(pid int, config json.RawMessage) error
	// StartDNS binds the container's resolver inside the network namespace
	// at netns (a path: Spec.NetNS, or /proc/PID/ns/net) and serves it in the background with config
	// (Spec.DNSServer) until the returned Closer is closed. The monitor calls
	// it before the container's process starts, so the first query finds it.
	StartDNS func(netns string, config json.RawMessage) (io.Closer, error)
}

// Reexec runs the hidden roles of the berth binary and reports whether it
// did. main calls it first, before any CLI framework starts:
//
//	berth monitor DIR   the per-container monitor (monitor.go)
//	berth init          the container's init, inside the new namespaces (init_linux.go)
//	berth enter         a process joining a running container (exec_linux.go)
//
// Neither returns: each ends the process itself.
func Reexec(roles Roles) bool {
	role := ""
	if len(os.Args) >= 2 {
		role = os.Args[1]
	}
	switch role {
	case "init":
		initMain()
	case "monitor":
		monitorMain(roles)
	case "enter":
		enterMain()
	default:
		// The CLI: files its own parent left open without close-on-exec
		// would pass on to every monitor (and hold a pipe of the shell's
		// open for as long as a container runs). Go opens all of its own
		// with close-on-exec; give these the same.
		closeExecFrom(3)
	}
	return false
}
