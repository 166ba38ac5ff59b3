package runtime

import (
	"encoding/json"
	"time"
)

// Spec is everything needed to run one container on this host. It holds plain
// values only: the project package turns a compose service and its image into
// a Spec, and the runtime never sees a compose type.
type Spec struct {
	// Name is the container name, unique on the host ("hello-web-1"). It
	// names the container's directory, its cgroup and its log prefix.
	Name string `json:"name"`
	// ID is a random 64-hex-digit identity, as docker's container ID; its
	// first 12 digits are the default hostname.
	ID       string            `json:"id"`
	Hostname string            `json:"hostname"`
	Labels   map[string]string `json:"labels,omitempty"`

	// Image is the reference the user wrote; ImageID is the image's config
	// digest ("sha256:…"), which is what "in use" checks compare.
	Image   string `json:"image"`
	ImageID string `json:"imageId"`
	// Layers are the image's unpacked layer directories, lowest first. They
	// are shared read-only by every container of the image: the container's
	// root is an overlay of them with the container's own upper directory.
	Layers []string `json:"layers"`

	// Args is the process to run: entrypoint and command, already merged by
	// docker's rules. Args[0] is looked up in the container's PATH.
	Args []string `json:"args"`
	Env  []string `json:"env"`
	// Cwd is the working directory inside the container ("/" when empty); it
	// is created if missing, as docker does.
	Cwd string `json:"cwd,omitempty"`
	// User is "uid", "uid:gid", "name" or "name:group", resolved against the
	// image's /etc/passwd and /etc/group. Empty means root.
	User string `json:"user,omitempty"`

	Mounts         []Mount `json:"mounts,omitempty"`
	ReadonlyRootfs bool    `json:"readonlyRootfs,omitempty"`

	// Restart is what the monitor does when the process exits by itself:
	// docker's restart policies (restart.go).
	Restart RestartPolicy `json:"restart,omitzero"`
	// Resources are the cgroup limits of the container.
	Resources Resources `json:"resources,omitzero"`

	// StopSignal is sent first on stop ("SIGTERM" when empty); SIGKILL
	// follows after StopTimeout (10s when zero).
	StopSignal  string        `json:"stopSignal,omitempty"`
	StopTimeout time.Duration `json:"stopTimeout,omitempty"`

	// Healthcheck is the container's health probe, which its monitor runs
	// inside the container while it runs (nil: none).
	Healthcheck *Healthcheck `json:"healthcheck,omitempty"`
	// EventLog is a file the monitor appends the container's events to
	// (start, die, restart, health_status, oom…), one JSON Event per
	// line; empty: none.
	EventLog string `json:"eventLog,omitempty"`

	// Hosts are extra /etc/hosts lines ("10.0.0.2 db").
	Hosts []string `json:"hosts,omitempty"`

	// NetNS is a network namespace to join, by path: one the network
	// package made and configured before the start (it outlives restarts of
	// the process), or another container's (network_mode: service:NAME).
	// With NetNS empty and HostNetwork false the container gets a new
	// namespace with only its loopback interface.
	NetNS string `json:"netns,omitempty"`
	// NetworkFrom joins the network namespace of another container of this
	// runtime, by name (network_mode: service:NAME): the monitor resolves it
	// when it starts, from that container's running process.
	NetworkFrom string `json:"networkFrom,omitempty"`
	// HostNetwork keeps the host's network namespace (network_mode: host).
	HostNetwork bool `json:"hostNetwork,omitempty"`
	// Network, when set, is handed to Roles.SetupNetwork with the new
	// namespace (by the process's PID) before the process starts: the
	// veth pairs, addresses and routes. The runtime does not read it.
	Network json.RawMessage `json:"network,omitempty"`
	// DNS are the nameservers of /etc/resolv.conf ("127.0.0.11" for the
	// monitor's resolver); empty: the host's, as docker passes them on.
	DNS        []string `json:"dns,omitempty"`
	DNSSearch  []string `json:"dnsSearch,omitempty"`
	DNSOptions []string `json:"dnsOptions,omitempty"`
	// DNSServer, when set, asks the monitor to serve the container's
	// resolver inside NetNS with this configuration (see Roles.StartDNS);
	// the runtime does not read it.
	DNSServer json.RawMessage `json:"dnsServer,omitempty"`
	// HoldPorts are the host ports published to this container: the
	// monitor binds each one on the host for as long as the container runs,
	// so that no other program can take a published port's address
	// (connections never reach these sockets: nftables translates them
	// first).
	HoldPorts []HostPort `json:"holdPorts,omitempty"`

	// Security is what the container's processes may ask of the kernel:
	// capabilities, seccomp, devices, sysctls, rlimits (security.go).
	Security Security `json:"security,omitzero"`
	// Log is how the monitor keeps the container's output (logging).
	Log LogConfig `json:"log,omitzero"`
}

// HostPort is one published address on the host.
type HostPort struct {
	Protocol string `json:"protocol"` // "tcp" or "udp"
	// IP is the host address ("" or "0.0.0.0": every address).
	IP   string `json:"ip,omitempty"`
	Port uint16 `json:"port"`
}

// LogConfig is docker's logging driver and its options for one container.
type LogConfig struct {
	// Driver is "json-file", "local" or "none"; empty: berth's default
	// ("local", docker's local driver limits: 100 MB in 5 files).
	Driver string `json:"driver,omitempty"`
	// MaxSize is the size in bytes past which the log file is rotated
	// (0: the driver's default; < 0: never).
	MaxSize int64 `json:"maxSize,omitempty"`
	// MaxFile is how many files, the current one included, are kept.
	MaxFile int `json:"maxFile,omitempty"`
	// Compress gzips rotated files.
	Compress *bool `json:"compress,omitempty"`
}

// newNetwork reports whether the container needs a network namespace of its
// own made by the clone.
func (s *Spec) newNetwork() bool { return s.NetNS == "" && s.NetworkFrom == "" && !s.HostNetwork }

// MountType says how a Mount's source becomes visible in the container.
type MountType string

const (
	// MountBind binds a host path (a bind mount or a named volume's data
	// directory) onto Target.
	MountBind MountType = "bind"
	// MountTmpfs mounts a fresh tmpfs on Target.
	MountTmpfs MountType = "tmpfs"
)

// Mount is one filesystem mounted into the container after its root.
type Mount struct {
	Type MountType `json:"type"`
	// Source is an absolute host path (MountBind); unused for tmpfs.
	Source string `json:"source,omitempty"`
	// Target is an absolute path inside the container. It is resolved inside
	// the container root: no symlink in the image can send it outside.
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
	// CopyUp copies what the image holds at Target into Source before the
	// mount when Source is empty: docker's behaviour for a new named volume.
	CopyUp bool `json:"copyUp,omitempty"`
	// TmpfsSize is the size limit in bytes (0: the kernel's default);
	// TmpfsMode the mode of its root (0: 01777).
	TmpfsSize int64  `json:"tmpfsSize,omitempty"`
	TmpfsMode uint32 `json:"tmpfsMode,omitempty"`
}

// RestartPolicy is docker's restart policy: "no" (or empty), "always",
// "on-failure" (with MaxRetries, 0 for no limit) or "unless-stopped". A
// stop asked by the user is never undone by the policy.
type RestartPolicy struct {
	Name       string `json:"name,omitempty"`
	MaxRetries int    `json:"maxRetries,omitempty"`
}

// Resources are a container's cgroup limits; zero means no limit.
type Resources struct {
	// MemoryLimit and MemoryReservation are in bytes (mem_limit,
	// mem_reservation).
	MemoryLimit       int64 `json:"memoryLimit,omitempty"`
	MemoryReservation int64 `json:"memoryReservation,omitempty"`
	// NanoCPUs is the CPU quota in billionths of a CPU (cpus: 1.5 is
	// 1.5e9), enforced as CFS quota over a 100 ms period.
	NanoCPUs int64 `json:"nanoCpus,omitempty"`
	// CPUShares is the relative weight (cpu_shares; 1024 is the default).
	CPUShares uint64 `json:"cpuShares,omitempty"`
	// PidsLimit caps the number of processes (pids_limit).
	PidsLimit int64 `json:"pidsLimit,omitempty"`
}

// Healthcheck is docker's healthcheck, with its defaults filled in by the
// monitor for the zero values: interval 30s, timeout 30s, start interval
// 5s, 3 retries.
type Healthcheck struct {
	// Args is the probe, run as `exec` runs a command: CMD's arguments, or
	// ["/bin/sh", "-c", cmd] for CMD-SHELL. Exit code 0 is healthy.
	Args          []string      `json:"args"`
	Interval      time.Duration `json:"interval,omitempty"`
	Timeout       time.Duration `json:"timeout,omitempty"`
	StartPeriod   time.Duration `json:"startPeriod,omitempty"`
	StartInterval time.Duration `json:"startInterval,omitempty"`
	Retries       int           `json:"retries,omitempty"`
}
