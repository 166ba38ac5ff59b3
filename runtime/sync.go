package runtime

// The monitor and the container's init talk over one socketpair, passed to
// the init as fd 3. The init is the berth binary re-executed as
// `berth init`, already inside the new namespaces (the clone flags are set by
// the monitor), so it is a fresh single-threaded process image when it starts.
//
//	monitor (parent, host namespaces)          init (child, new namespaces)
//	  start /proc/self/exe init  ───────────────►  blocks reading fd 3
//	  put the child in the cgroup
//	  (network setup of the child's netns goes here)
//	  ── initRequest{Spec, Dir} (JSON) ─────────►  mount root, /proc, /dev, /sys,
//	                                               volumes, hostname, pivot_root,
//	                                               mask /proc, user, caps, no_new_privs
//	  ◄── initError{Error} (JSON) ───────────────  on any failure; then exit(1)
//	  ◄── EOF ───────────────────────────────────  fd 3 is close-on-exec, so a
//	                                               successful execve closes it
//
// So the monitor knows the exec succeeded when it reads EOF without a
// message, and it shows the user the init's own words when it did not.

// initRequest is what the monitor sends the init once host-side setup is done.
type initRequest struct {
	Spec Spec `json:"spec"`
	// Dir is the container's directory on the host (config, hostname and hosts
	// files, upper and work directories of the overlay, the rootfs mount point).
	Dir string `json:"dir"`
}

// initError is the init's report of the step that failed, already worded for
// the user: `exec: "foo": executable file not found in $PATH`.
type initError struct {
	Error string `json:"error"`
}

// initFD is the init's end of the sync socketpair (ExtraFiles[0]).
const initFD = 3
