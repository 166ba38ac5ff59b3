package runtime

// Files and folders of one container's directory (BERTH_ROOT/containers/NAME).
// Nothing of a container lives anywhere else on the host but its cgroup: the
// overlay and every other mount exist only in the container's own mount
// namespace, so they vanish with its last process.
const (
	configFile   = "config.json"   // the Spec, written once by Create
	seccompFile  = "seccomp.bpf"   // the compiled seccomp filter, written once by Create
	stateFile    = "state.json"    // the State, rewritten atomically
	logFile      = "container.log" // stdout and stderr, one CRI-format line each
	monitorSock  = "monitor.sock"  // the monitor's control socket
	monitorLog   = "monitor.log"   // the monitor's own diagnostics
	hostnameFile = "hostname"      // bind-mounted on /etc/hostname
	hostsFile    = "hosts"         // bind-mounted on /etc/hosts
	resolvFile   = "resolv.conf"   // bind-mounted on /etc/resolv.conf
	upperDir     = "upper"         // the overlay's writable layer
	workDir      = "work"          // the overlay's work directory
	rootfsDir    = "rootfs"        // where the init mounts the overlay
)
