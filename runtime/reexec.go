package runtime

import "os"

// Reexec runs the hidden roles of the berth binary and reports whether it
// did. main calls it first, before any CLI framework starts:
//
//	berth monitor DIR   the per-container monitor (monitor.go)
//	berth init          the container's init, inside the new namespaces (init_linux.go)
//
// Neither returns: each ends the process itself.
func Reexec() bool {
	if len(os.Args) < 2 {
		return false
	}
	switch os.Args[1] {
	case "init":
		initMain()
	case "monitor":
		monitorMain()
	}
	return false
}
