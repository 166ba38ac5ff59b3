package runtime

// Security is what the processes of a container may ask of the kernel. The
// zero value is docker's default container: docker's capability set,
// docker's default seccomp profile, docker's device allowlist, the host's
// rlimits, no extra groups.
type Security struct {
	// Privileged gives every capability and every host device, no seccomp
	// filter, and /sys and /proc writable, as docker's --privileged.
	Privileged bool `json:"privileged,omitempty"`
	// CapAdd and CapDrop change docker's default set, by docker's names
	// ("NET_ADMIN" or "CAP_NET_ADMIN", "ALL"): drop applies first, so
	// `cap_drop: [ALL]` with `cap_add: [CHOWN]` keeps CHOWN alone.
	CapAdd  []string `json:"capAdd,omitempty"`
	CapDrop []string `json:"capDrop,omitempty"`
	// NoNewPrivileges sets no_new_privs on the container's process
	// (security_opt no-new-privileges:true); docker leaves it off.
	NoNewPrivileges bool `json:"noNewPrivileges,omitempty"`
	// SeccompUnconfined runs without a filter (seccomp=unconfined);
	// otherwise SeccompProfile, a profile in docker's JSON format, or
	// docker's default profile when it is empty.
	SeccompUnconfined bool   `json:"seccompUnconfined,omitempty"`
	SeccompProfile    []byte `json:"seccompProfile,omitempty"`
	// SystemPathsUnconfined leaves /proc and /sys as the kernel shows them:
	// no masked and no read-only paths (security_opt
	// systempaths=unconfined).
	SystemPathsUnconfined bool `json:"systemPathsUnconfined,omitempty"`
	// Devices are host devices made in the container's /dev and allowed
	// by its device cgroup (devices: /dev/x:/dev/y:rwm).
	Devices []Device `json:"devices,omitempty"`
	// DeviceCgroupRules are more allow rules of the device cgroup, in the
	// cgroup v1 syntax ("c 1:3 rwm", "b *:* r").
	DeviceCgroupRules []string `json:"deviceCgroupRules,omitempty"`
	// GroupAdd are supplementary groups, by name (resolved against the
	// image's /etc/group) or by number.
	GroupAdd []string `json:"groupAdd,omitempty"`
	// Sysctls are namespaced kernel parameters set in the container's own
	// namespaces ("net.ipv4.ip_forward": "1").
	Sysctls map[string]string `json:"sysctls,omitempty"`
	// Ulimits are the process's resource limits (RLIMIT_*), by docker's
	// names ("nofile", "nproc"…).
	Ulimits []Ulimit `json:"ulimits,omitempty"`
	// OOMScoreAdj is written to the process's oom_score_adj (nil: kept).
	OOMScoreAdj *int `json:"oomScoreAdj,omitempty"`
}

// Device is a host device node given to a container.
type Device struct {
	// HostPath is the device on the host ("/dev/fuse"); ContainerPath is
	// where it appears (HostPath when empty).
	HostPath      string `json:"hostPath"`
	ContainerPath string `json:"containerPath,omitempty"`
	// Permissions are the cgroup's access: any of "r", "w", "m" ("rwm"
	// when empty).
	Permissions string `json:"permissions,omitempty"`
}

// Ulimit is one resource limit, as docker's --ulimit name=soft:hard.
type Ulimit struct {
	Name string `json:"name"`
	Soft int64  `json:"soft"`
	Hard int64  `json:"hard"`
}
